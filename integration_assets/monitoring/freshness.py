"""Freshness checks: the fail windows of monitoring.yaml as Dagster's last-update freshness checks.

A FreshnessPolicy (attached by each slice to its own assets, `core/policies.py`) only colours the asset in
the UI; it produces no check evaluation, so nothing could alert on stale data. The checks here are Dagster's
own last-update freshness checks over the same fail windows (`freshness.*_fail_minutes`), one
`freshness_check` per source and canonical asset, evaluated by `freshness_checks_sensor` (Dagster's sensor for
freshness checks: it launches a run of the checks whose asset may have gone stale). A failed evaluation is an
asset check evaluation like any other: the drift sensor (`sensors.family_of` sends `freshness` there) turns it
into one alert per stale asset, and a recovery notice once the asset is materialized and its check passes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import timedelta

from dagster import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    DefaultSensorStatus,
    SensorDefinition,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)
from dagster_shared.utils.warnings import SupersessionWarning

from integration_assets.core.policies import freshness_windows

__all__ = ["build_freshness_checks", "build_freshness_sensor"]


def build_freshness_checks(
    source: Sequence[AssetKey | AssetsDefinition], canonical: Sequence[AssetKey | AssetsDefinition]
) -> list[AssetChecksDefinition]:
    """One `freshness_check` per asset: fails (ERROR) once it has not materialized within its layer's fail window."""
    checks: list[AssetChecksDefinition] = []
    for layer, assets in (("source", source), ("canonical", canonical)):
        if assets:
            fail, _ = freshness_windows().windows(layer)
            with warnings.catch_warnings():  # "superseded" by FreshnessPolicy, which alone yields no evaluation
                warnings.simplefilter("ignore", SupersessionWarning)
                checks += build_last_update_freshness_checks(
                    assets=list(assets), lower_bound_delta=timedelta(minutes=fail), severity=AssetCheckSeverity.ERROR
                )
    return checks


def build_freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_sensor_for_freshness_checks(
            freshness_checks=list(checks),
            name="freshness_checks_sensor",
            minimum_interval_seconds=60,
            default_status=DefaultSensorStatus.RUNNING,
        )
