"""Freshness: config windows as Dagster's FreshnessPolicy (the UI's freshness state) and as freshness checks.

A FreshnessPolicy only colours the asset in the UI; it produces no check evaluation, so nothing could alert on
stale data. The checks here are Dagster's own last-update freshness checks over the same fail windows
(`freshness.*_fail_minutes` in data/monitoring.yaml), one `freshness_check` per source and canonical asset,
evaluated by `freshness_sensor` (Dagster's sensor for freshness checks: it launches a run of the checks whose
asset may have gone stale). A failed evaluation is an asset check evaluation like any other: the drift sensor
(`sensors.family_of` sends `freshness` there) turns it into one alert per stale asset, and a recovery notice
once the asset is materialized and its check passes again.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from dagster import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    DefaultSensorStatus,
    FreshnessPolicy,
    SensorDefinition,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)
from dagster_shared.utils.warnings import SupersessionWarning

from integration_assets.monitoring.config import load_monitoring

__all__ = [
    "FRESHNESS_CHECK_NAME",
    "build_freshness_checks",
    "freshness_checks",
    "freshness_policy",
    "freshness_sensor",
]

freshness_checks: list[AssetChecksDefinition]  # built on first use, see __getattr__
freshness_sensor: SensorDefinition
FRESHNESS_CHECK_NAME = "freshness_check"  # the name Dagster gives every last-update freshness check
Layer = Literal["source", "canonical"]


def _windows(layer: Layer) -> tuple[int, int]:
    windows = load_monitoring().freshness
    if layer == "source":
        return windows.source_fail_minutes, windows.source_warn_minutes
    return windows.canonical_fail_minutes, windows.canonical_warn_minutes


def freshness_policy(layer: Layer) -> FreshnessPolicy:
    """Warn, then fail, when the layer's assets have not materialized within the windows of monitoring.yaml."""
    fail, warn = _windows(layer)
    return FreshnessPolicy.time_window(fail_window=timedelta(minutes=fail), warn_window=timedelta(minutes=warn))


def build_freshness_checks(
    source: Sequence[AssetsDefinition], canonical: Sequence[AssetsDefinition]
) -> list[AssetChecksDefinition]:
    """One `freshness_check` per asset: fails (ERROR) once it has not materialized within its layer's fail window."""
    checks: list[AssetChecksDefinition] = []
    for layer, assets in (("source", source), ("canonical", canonical)):
        if assets:
            fail, _ = _windows(layer)
            with warnings.catch_warnings():  # "superseded" by FreshnessPolicy, which alone yields no evaluation
                warnings.simplefilter("ignore", SupersessionWarning)
                checks += build_last_update_freshness_checks(
                    assets=list(assets), lower_bound_delta=timedelta(minutes=fail), severity=AssetCheckSeverity.ERROR
                )
    return checks


def _project_assets() -> tuple[list[AssetsDefinition], list[AssetsDefinition]]:
    # imported here: the asset modules import `freshness_policy` from this one
    from integration_assets.canonical.assets import assets as canonical_assets
    from integration_assets.systems.billing.assets import assets as billing_assets
    from integration_assets.systems.crm.assets import assets as crm_assets
    from integration_assets.systems.support.assets import assets as support_assets

    return [*crm_assets, *billing_assets, *support_assets], list(canonical_assets)


def __getattr__(name: str) -> object:
    """`freshness_checks` and `freshness_sensor`, built on first use (the asset modules import this one)."""
    if name in ("freshness_checks", "freshness_sensor"):
        checks = build_freshness_checks(*_project_assets())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SupersessionWarning)
            sensor = build_sensor_for_freshness_checks(
                freshness_checks=checks,
                name="freshness_checks_sensor",
                minimum_interval_seconds=60,
                default_status=DefaultSensorStatus.RUNNING,
            )
        globals().update(freshness_checks=checks, freshness_sensor=sensor)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
