"""The monitoring slice: quality checks on every source stream, freshness, connector health, and the sensors
that turn failed checks and runs into alerts (one per problem).

Check names are fixed (`contract`, `drift`, `volume`, `freshness_check`): the alert sensors group check
outcomes by them. `contract`, `drift` and `volume` are stream checks: the code location hands them to the
source assets, so they run in each stream's own step (`stream_checks`).
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.automation import job, schedule
from integration_assets.core.catalog import Catalog
from integration_assets.core.monitoring_config import check_roles, load_monitoring
from integration_assets.core.stream_check import StreamCheck
from integration_assets.monitoring.drift import DriftCheck
from integration_assets.monitoring.freshness import build_freshness_checks, build_freshness_sensor
from integration_assets.monitoring.health import build_health_asset, build_health_checks
from integration_assets.monitoring.pools import blocked_pool_alerts
from integration_assets.monitoring.raw_contract_check import ContractCheck
from integration_assets.monitoring.sensors import sensors
from integration_assets.monitoring.volume import VolumeCheck
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "stream_checks"]


def stream_checks() -> list[StreamCheck]:
    """The checks this slice runs in every source stream's own step."""
    return [ContractCheck(), DriftCheck(), VolumeCheck()]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    check_roles(load_monitoring(), catalog.roles)  # refused at load, as every sensor tick refuses it
    health_asset = build_health_asset(catalog)
    freshness = build_freshness_checks([stream.asset_key for stream in catalog.streams], canonical_assets)
    health = job(
        "health",
        "health",
        AssetSelection.assets(health_asset),
        "Connector health from the call log, review queue and outbox, with its checks (health, downtime, traffic, "
        "credential expiry).",
        catalog.roles,
    )
    return Definitions(
        assets=[health_asset],
        asset_checks=[
            *build_health_checks(catalog),
            *freshness,
        ],
        jobs=[health],
        schedules=[
            schedule(
                "health_every_15_minutes",
                health,
                "*/15 * * * *",
                "Connector health every quarter hour.",
                why="health measures time passing (traffic dropping, a vendor gone silent, a credential nearing "
                "expiry), which no data change announces.",
            )
        ],
        sensors=[*sensors, build_freshness_sensor(freshness), blocked_pool_alerts],
    )
