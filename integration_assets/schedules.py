"""Jobs and schedules: incremental sync hourly, reconciliation daily, connector health every 15 minutes,
write-back hourly after the sync.

Steps that call vendors are the source assets: each carries a `RetryPolicy` with exponential backoff and jitter
(core/source_asset.py) and the concurrency pool of its vendor, so parallel runs share the vendor's rate limit
(one slot per pool: `concurrency.pools.default_limit` in dagster.yaml and in the quickstart's instance). The
completeness checks, which count at the vendor, run in the sync job in the same pools with the same retries;
the health and cross-system reconciliation steps read the warehouse only.

Runs carry tags saying which systems they concern (`system/<role>: "true"`), so the runs page filters by system.
"""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.monitoring.freshness import freshness_checks
from integration_assets.monitoring.health import assets as health_assets
from integration_assets.monitoring.metrics import SYSTEMS
from integration_assets.reconciliation.checks import cross_system_checks
from integration_assets.systems.billing.assets import assets as billing_assets
from integration_assets.systems.crm.assets import assets as crm_assets
from integration_assets.systems.support.assets import assets as support_assets
from integration_assets.writeback import assets as writeback_assets

__all__ = ["SOURCES", "flow_tags", "jobs", "schedules", "system_tags"]

SOURCES = [*crm_assets, *billing_assets, *support_assets]
TIMEZONE = "UTC"


def system_tags(*roles: str) -> dict[str, str]:
    """Run tags naming the systems a run concerns: `system/crm: "true"`, … (filterable in the runs page)."""
    return {f"system/{role}": "true" for role in roles}


def flow_tags(flow: str, *roles: str) -> dict[str, str]:
    """The tags of a job's runs, whether launched by hand or by its schedule."""
    return {"integration/flow": flow, **system_tags(*roles)}


def _job(name: str, flow: str, selection: AssetSelection, description: str):
    return define_asset_job(name, selection=selection, description=description, tags=flow_tags(flow, *SYSTEMS))


# Selecting assets selects their checks too (contract, drift, volume, completeness against the vendor, right
# after each stream lands); the cross-system checks run in their own daily job, and the freshness checks are
# the freshness sensor's.
integration_sync = _job(
    "integration_sync",
    "sync",
    AssetSelection.assets(*SOURCES, *canonical_assets) - AssetSelection.checks(*cross_system_checks, *freshness_checks),
    "Every source stream into the warehouse (incremental), then the canonical model and review queue, with their "
    "checks.",
)
reconciliation = _job(
    "reconciliation",
    "reconciliation",
    AssetSelection.checks(*cross_system_checks),
    "Cross-system reconciliation checks on the canonical tables (no asset is materialized).",
)
health = _job(
    "health",
    "health",
    AssetSelection.assets(*health_assets),
    "Connector health from the call log, review queue and outbox, with its checks (health, downtime, traffic, "
    "credential expiry).",
)
write_back = _job(
    "write_back",
    "write_back",
    AssetSelection.assets(*writeback_assets),
    "The write-back flows (CRM → billing, billing → CRM, CRM → support), each replaying its outbox first, with "
    "their outbox_drained checks; outbox_replay launches a flow when its waiting writes are due.",
)

jobs = [integration_sync, reconciliation, health, write_back]


def _schedule(name: str, job, flow: str, cron: str, description: str) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=name,
        job=job,
        tags=flow_tags(flow, *SYSTEMS),
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        description=description,
    )


schedules = [
    _schedule(
        "integration_sync_hourly",
        integration_sync,
        "sync",
        "0 * * * *",
        "Incremental sync of every stream at the top of each hour.",
    ),
    _schedule(
        "reconciliation_daily",
        reconciliation,
        "reconciliation",
        "30 5 * * *",
        "Reconciliation once a day, after the 05:00 sync has landed.",
    ),
    _schedule("health_every_15_minutes", health, "health", "*/15 * * * *", "Connector health every quarter hour."),
    _schedule(
        "write_back_hourly",
        write_back,
        "write_back",
        "20 * * * *",
        "The write-back flows twenty minutes after each sync, from the canonical model it just built.",
    ),
]
