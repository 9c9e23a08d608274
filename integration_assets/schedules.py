"""Jobs and schedules: incremental sync hourly, reconciliation daily, connector health every 15 minutes.

Steps that call vendors are the source assets: each carries a `RetryPolicy` with exponential backoff and jitter
(core/source_asset.py) and the concurrency pool of its vendor, so parallel runs share the vendor's rate limit
(one slot per pool: `concurrency.pools.default_limit` in dagster.yaml and in the quickstart's instance). The
health and reconciliation steps read the warehouse only.

Runs carry tags saying which systems they concern (`system/<role>: "true"`), so the runs page filters by system.
"""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

from integration_assets.canonical.assets import asset_checks as canonical_checks
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.monitoring.health import assets as health_assets
from integration_assets.monitoring.metrics import SYSTEMS
from integration_assets.reconciliation.checks import asset_checks as reconciliation_checks
from integration_assets.systems.billing.assets import assets as billing_assets
from integration_assets.systems.crm.assets import assets as crm_assets
from integration_assets.systems.support.assets import assets as support_assets

__all__ = ["SOURCES", "flow_tags", "jobs", "schedules", "system_tags"]

SOURCES = [*crm_assets, *billing_assets, *support_assets]
TIMEZONE = "UTC"


def system_tags(*roles: str) -> dict[str, str]:
    """Run tags naming the systems a run concerns: `system/crm: "true"`, … (filterable in the runs page)."""
    return {f"system/{role}": "true" for role in roles}


def flow_tags(flow: str, *roles: str) -> dict[str, str]:
    """The tags of a job's runs, whether launched by hand or by its schedule."""
    return {"integration/flow": flow, **system_tags(*roles)}


def _reconciliation_selection() -> AssetSelection:
    """The reconciliation checks; until there are any, the canonical assets' own checks (a check-only run)."""
    if reconciliation_checks:
        return AssetSelection.checks(*reconciliation_checks)
    return AssetSelection.checks(*canonical_checks)


# Selecting assets selects their checks too; reconciliation checks run in their own daily job, not hourly.
integration_sync = define_asset_job(
    "integration_sync",
    selection=AssetSelection.assets(*SOURCES, *canonical_assets) - AssetSelection.checks(*reconciliation_checks),
    description="Every source stream into the warehouse (incremental), then the canonical model and review queue, "
    "with their checks.",
    tags=flow_tags("sync", *SYSTEMS),
)

reconciliation = define_asset_job(
    "reconciliation",
    selection=_reconciliation_selection(),
    description="Cross-system reconciliation checks on the canonical tables (no asset is materialized).",
    tags=flow_tags("reconciliation", *SYSTEMS),
)

health = define_asset_job(
    "health",
    selection=AssetSelection.assets(*health_assets),
    description="Connector health from the call log, review queue and outbox, with its checks (health, "
    "downtime, traffic, credential expiry).",
    tags=flow_tags("health", *SYSTEMS),
)

jobs = [integration_sync, reconciliation, health]

schedules = [
    ScheduleDefinition(
        name="integration_sync_hourly",
        job=integration_sync,
        tags=flow_tags("sync", *SYSTEMS),
        cron_schedule="0 * * * *",
        execution_timezone=TIMEZONE,
        description="Incremental sync of every stream at the top of each hour.",
    ),
    ScheduleDefinition(
        name="reconciliation_daily",
        job=reconciliation,
        tags=flow_tags("reconciliation", *SYSTEMS),
        cron_schedule="30 5 * * *",
        execution_timezone=TIMEZONE,
        description="Reconciliation once a day, after the 05:00 sync has landed.",
    ),
    ScheduleDefinition(
        name="health_every_15_minutes",
        job=health,
        tags=flow_tags("health", *SYSTEMS),
        cron_schedule="*/15 * * * *",
        execution_timezone=TIMEZONE,
        description="Connector health every quarter hour.",
    ),
]
