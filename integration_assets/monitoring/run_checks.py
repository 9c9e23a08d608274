"""Failed checks at run level: a run whose asset checks failed says so in the runs list.

Dagster lists a run as "Success" when its steps succeeded, whatever its checks found: a reconciliation run
with 3 of its 4 checks failed looks like any other. `run_check_tags` watches every run that ends (success,
failure or cancellation, of any job of the instance) and tags it with what its checks found:
`integration/failed_checks: "<n>"` and `integration/checks: "<failed> of <total> failed"`, so the runs list
shows the count beside the status and `integration/failed_checks` filters for runs with failures. A run that
evaluated no check is left untagged. A check evaluated twice in one run (a retried step) counts once, by its
latest evaluation.

The tags are set from a sensor, after the run ended (a run cannot add tags to itself through a public API);
`core/dagster_adapter.add_run_tags` does it, as the UI's tag editor does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from dagster import (
    AssetCheckKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from integration_assets.core.dagster_adapter import add_run_tags, owners_in_beta, run_events
from integration_assets.core.owners import team_owners
from integration_assets.monitoring.sensors import ended_records_after

__all__ = [
    "CHECKS_TAG",
    "FAILED_CHECKS_TAG",
    "check_tags",
    "run_check_tags",
    "run_check_tags_sensor",
    "tag_finished_runs",
]

FAILED_CHECKS_TAG = "integration/failed_checks"
CHECKS_TAG = "integration/checks"
ENDED = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)
PAGE = 200  # ended runs read per query and tick; the rest waits for the next tick
TICK_SECONDS = 30


def check_tags(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """The tags saying what the run's checks found; empty for a run that evaluated none."""
    latest: dict[AssetCheckKey, bool] = {}
    for entry in run_events(instance, run_id, DagsterEventType.ASSET_CHECK_EVALUATION):
        if entry.dagster_event is None:
            continue
        evaluation = entry.dagster_event.asset_check_evaluation_data
        latest[evaluation.asset_check_key] = evaluation.passed
    if not latest:
        return {}
    failed = sum(1 for passed in latest.values() if not passed)
    return {FAILED_CHECKS_TAG: str(failed), CHECKS_TAG: f"{failed} of {len(latest)} failed"}


def tag_finished_runs(instance: DagsterInstance, after: int) -> tuple[dict[str, Mapping[str, str]], int]:
    """Tags every run that ended after the storage id `after`; returns the tags set per run and the new cursor.

    Reads them as the run alerts do (`monitoring/sensors.ended_records_after`): when a page of one end status
    is full, the cursor stops at its last event so no run that ended before it with another status is skipped."""
    records, bound = ended_records_after(instance, ENDED, after, PAGE)
    tagged: dict[str, Mapping[str, str]] = {}
    for record in records:
        run_id = record.event_log_entry.run_id
        tags = check_tags(instance, run_id)
        if tags:
            add_run_tags(instance, run_id, tags)
            tagged[run_id] = tags
    return tagged, bound


def run_check_tags_sensor(
    name: str = "run_check_tags", minimum_interval_seconds: int = TICK_SECONDS
) -> SensorDefinition:
    with owners_in_beta():

        @sensor(
            name=name,
            description="Tags each run that ended with how many of its asset checks failed "
            f"(`{FAILED_CHECKS_TAG}`, `{CHECKS_TAG}`), so the runs list shows a run whose checks failed; "
            "runs that evaluated no check are left untagged.",
            minimum_interval_seconds=minimum_interval_seconds,
            default_status=DefaultSensorStatus.RUNNING,
            owners=team_owners(),
        )
        def _sensor(context: SensorEvaluationContext) -> SkipReason:
            after = int(json.loads(context.cursor)["after"]) if context.cursor else -1
            tagged, after = tag_finished_runs(context.instance, after)
            context.update_cursor(json.dumps({"after": after}))
            for run_id, tags in tagged.items():
                context.log.info(f"run {run_id}: {tags[CHECKS_TAG]} check(s)")
            failing = sum(1 for tags in tagged.values() if tags[FAILED_CHECKS_TAG] != "0")
            if not tagged:
                return SkipReason("no run with checks ended since the last tick")
            return SkipReason(
                f"tagged {len(tagged)} ended run(s) with their check counts; {failing} with failed checks"
            )

    return _sensor


run_check_tags = run_check_tags_sensor()
