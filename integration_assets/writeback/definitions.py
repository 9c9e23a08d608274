"""The write-back slice: the three flows into the vendors, their outbox checks, the replay sensor, the job, and
the automation sensor that runs each flow once the canonical tables it reads have changed (no schedule: a
flow follows the data it writes, not the clock)."""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.core.automation import automation_sensor, job
from integration_assets.core.catalog import Catalog
from integration_assets.systems import CATALOG
from integration_assets.writeback.assets import asset_checks, assets
from integration_assets.writeback.sensors import sensors

__all__ = ["build_defs"]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    flows = AssetSelection.assets(*assets)
    write_back = job(
        "write_back",
        "write_back",
        flows,
        "The write-back flows (CRM → billing, billing → CRM, CRM → support), each replaying its outbox first, with "
        "their outbox_drained checks; outbox_replay launches a flow when its waiting writes are due.",
        catalog.roles,
    )
    return Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[write_back],
        sensors=[
            *sensors,
            automation_sensor(
                "write_back",
                flows,
                "Runs each write-back flow once the canonical tables it reads have changed and are usable (built, "
                "their contract passed, none being rebuilt), with its outbox_drained check.",
                catalog.roles,
            ),
        ],
    )
