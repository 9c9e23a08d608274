"""The canonical slice: the canonical assets and their own checks, and the sync job that lands and builds them.

`integration_sync` runs every source stream and the canonical model with the checks that belong right after
them, each in the step that materializes its asset (contract, drift, volume, completeness on the sources;
contract and accounting on the canonical assets). It leaves out the cross-system checks (the reconciliation
slice runs them).
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.canonical.assets import assets
from integration_assets.core.automation import job
from integration_assets.core.catalog import Catalog
from integration_assets.systems import CATALOG

__all__ = ["build_defs"]


def sync_selection(catalog: Catalog) -> AssetSelection:
    sources = [stream.asset_key for stream in catalog.streams]
    source_checks = AssetSelection.checks_for_assets(*sources)
    own_checks = AssetSelection.checks(*(key for asset in assets for key in asset.check_keys))
    return AssetSelection.assets(*sources, *assets).without_checks() | source_checks | own_checks


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
        jobs=[integration_sync],  # by hand; `sync_automation` runs the same assets on the sources' hourly cron
    )
