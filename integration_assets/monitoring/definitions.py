"""The monitoring slice: quality checks on every source stream, connector health, the sensors that turn failed
checks, failed runs and late assets into alerts (one per problem), the `ops/alerts` asset they report, and the
sensor that tags each run with its failed checks.

Freshness is the assets' own `FreshnessPolicy` (attached by each slice), evaluated by Dagster's freshness
daemon; `freshness_alerts` turns its state changes into alerts. Check names are fixed (`contract`, `drift`,
`volume`): the alert sensors group check outcomes by them. All three are stream checks: the code location
hands them to the source assets, so they run in each stream's own step (`stream_checks`).
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.core.automation import job, schedule
from integration_assets.core.catalog import Catalog
from integration_assets.core.monitoring_config import check_roles, load_monitoring
from integration_assets.core.stream_check import StreamCheck
from integration_assets.monitoring.drift import DriftCheck
from integration_assets.monitoring.health import build_health_asset, build_health_checks
from integration_assets.monitoring.pools import blocked_pool_alerts
from integration_assets.monitoring.raw_contract_check import ContractCheck
from integration_assets.monitoring.run_checks import run_check_tags
from integration_assets.monitoring.sensors import ops_alerts_asset, sensors
from integration_assets.monitoring.volume import VolumeCheck
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "stream_checks"]


def stream_checks() -> list[StreamCheck]:
    """The checks this slice runs in every source stream's own step."""
    return [ContractCheck(), DriftCheck(), VolumeCheck()]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    check_roles(load_monitoring(), catalog.roles)  # refused at load, as every sensor tick refuses it
    health_asset = build_health_asset(catalog)
    health = job(
        "health",
        "health",
        AssetSelection.assets(health_asset),
        "Connector health from the call log, review queue and outbox, with its checks (health, downtime, traffic, "
        "credential expiry).",
        catalog.roles,
    )
    return Definitions(
        assets=[health_asset, ops_alerts_asset()],
        asset_checks=build_health_checks(catalog),
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
        sensors=[*sensors, blocked_pool_alerts, run_check_tags],
    )
