"""The canonical slice: the canonical assets and their own checks, and the sync job that lands and builds them.

`integration_sync` runs every source stream and the canonical model with the checks that belong right after
them (contract, drift, volume, completeness on the sources; contract and accounting on the canonical assets).
It leaves out the freshness checks (the freshness sensor evaluates those) and the cross-system checks (the
reconciliation slice runs them daily).
"""

from __future__ import annotations

from dagster import AssetCheckKey, AssetSelection, Definitions

from integration_assets.canonical.assets import asset_checks as accounting_checks
from integration_assets.canonical.assets import assets
from integration_assets.canonical.contract_check import canonical_contract_checks
from integration_assets.core.automation import job, schedule
from integration_assets.core.catalog import Catalog
from integration_assets.core.policies import FRESHNESS_CHECK_NAME
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "canonical_checks"]

canonical_checks = [*accounting_checks, *canonical_contract_checks()]


def sync_selection(catalog: Catalog) -> AssetSelection:
    sources = [stream.asset_key for stream in catalog.streams]
    source_checks = AssetSelection.checks_for_assets(*sources) - AssetSelection.checks(
        *(AssetCheckKey(key, FRESHNESS_CHECK_NAME) for key in sources)
    )
    return (
        AssetSelection.assets(*sources, *assets).without_checks()
        | source_checks
        | AssetSelection.checks(*canonical_checks)
    )


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    integration_sync = job(
        "integration_sync",
        "sync",
        sync_selection(catalog),
        "Every source stream into the warehouse (incremental), then the canonical model and review queue, with "
        "their checks.",
        catalog.roles,
    )
    return Definitions(
        assets=assets,
        asset_checks=canonical_checks,
        jobs=[integration_sync],
        schedules=[
            schedule(
                "integration_sync_hourly",
                integration_sync,
                "0 * * * *",
                "Incremental sync of every stream at the top of each hour.",
            )
        ],
    )
