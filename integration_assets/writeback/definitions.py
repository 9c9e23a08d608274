"""The write-back slice: the three flows into the vendors, their outbox checks, the replay sensor and the
hourly job, twenty minutes after each sync."""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.core.automation import job, schedule
from integration_assets.core.catalog import Catalog
from integration_assets.systems import CATALOG
from integration_assets.writeback.assets import asset_checks, assets
from integration_assets.writeback.sensors import sensors

__all__ = ["build_defs"]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    write_back = job(
        "write_back",
        "write_back",
        AssetSelection.assets(*assets),
        "The write-back flows (CRM → billing, billing → CRM, CRM → support), each replaying its outbox first, with "
        "their outbox_drained checks; outbox_replay launches a flow when its waiting writes are due.",
        catalog.roles,
    )
    return Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[write_back],
        schedules=[
            schedule(
                "write_back_hourly",
                write_back,
                "20 * * * *",
                "The write-back flows twenty minutes after each sync, from the canonical model it just built.",
            )
        ],
        sensors=sensors,
    )
