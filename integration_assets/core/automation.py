"""Jobs, schedules and automation sensors as every slice declares them: tagged with the flow and the systems a
run concerns.

Runs carry tags saying which flow (`integration/flow`) and which systems (`system/<role>: "true"`) they
concern, so the runs page filters by them; a job's runs, its schedule's and its automation sensor's carry the
same tags. Schedules run in UTC and start stopped (turned on in the UI once the vendors are connected).

Automation sensors evaluate the automation conditions (`core/policies.automation_condition`) of one flow's
assets and checks and launch what is due. Their runs are runs of Dagster's implicit asset job (`__ASSET_JOB`),
not of the flow's job, so they take the flow's tags from the sensor (`run_tags`); one sensor per flow keeps
those tags true of every run it launches, and lets a flow be paused alone (UI → Automation). They start
running: the data decides when a flow runs, and a switch someone must remember is a flow that never runs.
Their tick interval is `INTEGRATION_AUTOMATION_INTERVAL_SECONDS` (default 30, Dagster's own default).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    ExecutorDefinition,
    ScheduleDefinition,
    define_asset_job,
)

from integration_assets.core.owners import team_owners

if TYPE_CHECKING:  # the type `define_asset_job` returns (not exported by dagster itself)
    from integration_assets.core.dagster_adapter import UnresolvedAssetJobDefinition

__all__ = [
    "AUTOMATION_INTERVAL_ENV",
    "DEFAULT_AUTOMATION_INTERVAL_SECONDS",
    "SCHEDULE_REASON",
    "TIMEZONE",
    "automation_interval_seconds",
    "automation_sensor",
    "flow_tags",
    "job",
    "schedule",
    "system_tags",
]

TIMEZONE = "UTC"
SCHEDULE_REASON = "A schedule, not automation: "  # then why the clock decides, not the data
AUTOMATION_INTERVAL_ENV = "INTEGRATION_AUTOMATION_INTERVAL_SECONDS"
DEFAULT_AUTOMATION_INTERVAL_SECONDS = 30


def system_tags(*roles: str) -> dict[str, str]:
    """Run tags naming the systems a run concerns: `system/crm: "true"`, … (filterable in the runs page)."""
    return {f"system/{role}": "true" for role in roles}


def flow_tags(flow: str, *roles: str) -> dict[str, str]:
    """The tags of a flow's runs, whether launched by hand, by its schedule or by its automation sensor."""
    return {"integration/flow": flow, **system_tags(*roles)}


def job(
    name: str,
    flow: str,
    selection: AssetSelection,
    description: str,
    roles: Iterable[str],
    executor: ExecutorDefinition | None = None,
) -> UnresolvedAssetJobDefinition:
    """A job of the flow; `executor` overrides the code location's one (`core/executor.py`) for this job. Its
    owners are the team of its system, or the default team when it concerns several (`core/owners.py`)."""
    roles = tuple(roles)
    return define_asset_job(
        name,
        selection=selection,
        description=description,
        tags=flow_tags(flow, *roles),
        executor_def=executor,
        owners=team_owners(roles[0] if len(roles) == 1 else None),
    )


def schedule(
    name: str, of: UnresolvedAssetJobDefinition, cron: str, description: str, *, why: str | None = None
) -> ScheduleDefinition:
    """A schedule of `of`, its runs tagged like the job's own. What the automation sensors run needs none: a
    schedule that remains says `why` the clock, not the data, decides (appended to its description)."""
    return ScheduleDefinition(
        name=name,
        job=of,
        tags=dict(of.tags),
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        description=f"{description} {SCHEDULE_REASON}{why}" if why else description,
        owners=list(of.owners or team_owners()),  # the job's
    )


def automation_interval_seconds(environ: Mapping[str, str] = os.environ) -> int:
    """Seconds between two ticks of an automation sensor: `INTEGRATION_AUTOMATION_INTERVAL_SECONDS`, else 30."""
    text = environ.get(AUTOMATION_INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_AUTOMATION_INTERVAL_SECONDS
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ValueError(f"{AUTOMATION_INTERVAL_ENV}={text!r}: give a whole number of seconds, at least 1")
    return seconds


def automation_sensor(
    flow: str, target: AssetSelection, description: str, roles: Iterable[str]
) -> AutomationConditionSensorDefinition:
    """The automation sensor of a flow (`<flow>_automation`): it evaluates the automation conditions of the
    assets and checks in `target` (those without one are left alone) and tags its runs like the flow's job.

    Targets of two automation sensors must not overlap: Dagster refuses a shared asset at load, and a shared
    check would be requested twice."""
    return AutomationConditionSensorDefinition(
        f"{flow}_automation",
        target=target,
        run_tags=flow_tags(flow, *roles),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=automation_interval_seconds(),
        description=description,
    )
