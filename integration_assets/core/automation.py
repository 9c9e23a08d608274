"""Jobs and schedules as every slice declares them: tagged with the flow and the systems a run concerns.

Runs carry tags saying which systems they concern (`system/<role>: "true"`), so the runs page filters by
system; schedules run in UTC and start stopped (turned on in the UI once the vendors are connected).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

if TYPE_CHECKING:  # the type `define_asset_job` returns (not exported by dagster itself)
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

__all__ = ["TIMEZONE", "flow_tags", "job", "schedule", "system_tags"]

TIMEZONE = "UTC"


def system_tags(*roles: str) -> dict[str, str]:
    """Run tags naming the systems a run concerns: `system/crm: "true"`, … (filterable in the runs page)."""
    return {f"system/{role}": "true" for role in roles}


def flow_tags(flow: str, *roles: str) -> dict[str, str]:
    """The tags of a job's runs, whether launched by hand or by its schedule."""
    return {"integration/flow": flow, **system_tags(*roles)}


def job(
    name: str, flow: str, selection: AssetSelection, description: str, roles: Iterable[str]
) -> UnresolvedAssetJobDefinition:
    return define_asset_job(name, selection=selection, description=description, tags=flow_tags(flow, *roles))


def schedule(name: str, of: UnresolvedAssetJobDefinition, cron: str, description: str) -> ScheduleDefinition:
    """A schedule of `of`, its runs tagged like the job's own."""
    return ScheduleDefinition(
        name=name,
        job=of,
        tags=dict(of.tags),
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        description=description,
    )
