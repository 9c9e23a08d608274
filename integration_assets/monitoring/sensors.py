"""Sensors that turn failed asset checks and failed runs into alerts, once per problem.

Each sensor reads the instance's event log after its cursor (an event storage id), so it works the same on
SQLite and PostgreSQL instances and never reads an evaluation twice in normal operation. Per problem, the
newest evaluation read decides: failing opens an alert (if none is open), passing resolves the open one.

Check sensors are split by family (drift, missing records, connector health, traffic) so each shows up
on its own in the UI with its own ticks; `family_of` assigns every check name to exactly one family, and
`failed_check_alerts` takes the rest, so no check alerts twice. One sensor handles both failures and
successes of runs, in event order, so a recovery is never processed before the failure it clears.

Sensors are RUNNING by default: alerting that someone must remember to switch on is alerting that is off.
They cost little when idle (a tick that finds no new event and nothing pending does not open the
warehouse), write to a local JSON-lines file by default, and post to a webhook only once it is configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    EventLogEntry,
    EventLogRecord,
    FloatMetadataValue,
    IntMetadataValue,
    RunStatusChangeRecordsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._utils.error import SerializableErrorInfo

from integration_assets.core.resources import WarehouseResource
from integration_assets.monitoring.alerts import (
    Observation,
    apply_observations,
    ensure_alerts_table,
    problem_key_for_check,
    problem_key_for_job,
)
from integration_assets.monitoring.config import Owners, load_monitoring
from integration_assets.monitoring.sinks import configured_sinks, deliver_pending

__all__ = [
    "CHECK_FAMILIES",
    "OTHER_CHECKS",
    "RUNS",
    "check_alert_sensor",
    "family_of",
    "read_check_observations",
    "read_run_observations",
    "run_alert_sensor",
    "sensors",
]

# Which sensor watches which check, by the check's name (first match wins); extend here, nowhere else.
CHECK_FAMILIES: dict[str, re.Pattern[str]] = {
    "traffic": re.compile(r"traffic"),
    "connector_health": re.compile(r"connector_health|health|downtime|credential|latency|success_rate|rate_limit"),
    "drift": re.compile(r"drift|schema|volume|freshness"),
    "missing_records": re.compile(r"complete|missing|reconcil|invoiced|paid|customer_master|known_people"),
}
OTHER_CHECKS = "checks"  # every check no family above claims
RUNS = "runs"
ROLES = ("crm", "billing", "support")
PAGE = 1000  # events read per query
MAX_PAGES = 20  # per tick; the rest waits for the next tick, the cursor says where to resume
TICK_SECONDS = 60


def family_of(check_name: str) -> str:
    for family, pattern in CHECK_FAMILIES.items():
        if pattern.search(check_name):
            return family
    return OTHER_CHECKS


@dataclass(frozen=True)
class TickCursor:
    """How far the event log was read, and whether a notice of this sensor still waits for a sink."""

    after: int = -1
    pending: bool = False

    @classmethod
    def parse(cls, text: str | None) -> TickCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data.get("after", -1)), bool(data.get("pending", False)))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "pending": self.pending})


# reading the event log -------------------------------------------------------------------------------------


def _metadata(evaluation: AssetCheckEvaluation) -> dict[str, Any]:
    return {name: value.value for name, value in evaluation.metadata.items()}


def _counts(evaluation: AssetCheckEvaluation) -> dict[str, int | float]:
    """The numeric metadata (what the UI plots) is the alert's evidence of how much is wrong."""
    return {
        name: value.value
        for name, value in evaluation.metadata.items()
        if isinstance(value, IntMetadataValue | FloatMetadataValue) and value.value is not None
    }


def _system_of(asset_path: Sequence[str], declared: Any) -> str | None:
    if isinstance(declared, str) and declared:
        return declared
    return asset_path[0] if asset_path and asset_path[0] in ROLES else None


def check_observation(event_id: int, entry: EventLogEntry, owners: Owners) -> Observation:
    """One asset check evaluation as an observation, with the evidence every check of the project carries."""
    assert entry.dagster_event is not None
    evaluation = entry.dagster_event.asset_check_evaluation_data
    asset = evaluation.asset_key.to_user_string()
    meta = _metadata(evaluation)
    system = _system_of(evaluation.asset_key.path, meta.get("system"))
    sample_ids = [part.strip() for part in str(meta.get("sample_ids") or "").split(",") if part.strip()]
    summary = str(meta.get("summary") or evaluation.description or f"check {evaluation.check_name} on {asset} failed")
    next_action = str(
        meta.get("next_action")
        or f"Open asset {asset} in the Dagster UI, read the latest evaluation of check {evaluation.check_name}."
    )
    return Observation(
        problem_key=problem_key_for_check(asset, evaluation.check_name),
        kind="check",
        family=family_of(evaluation.check_name),
        failing=not evaluation.passed,
        event_id=event_id,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        run_id=entry.run_id or None,
        severity="WARNING" if evaluation.severity.value == "WARN" else "CRITICAL",
        system=system,
        asset=asset,
        check_name=evaluation.check_name,
        summary=summary,
        evidence={
            "run_id": entry.run_id,
            "check": f"{asset}:{evaluation.check_name}",
            "counts": _counts(evaluation),
            "sample_ids": sample_ids,
            "event_id": event_id,
        },
        next_action=next_action,
        owner=owners.of(system),
    )


def read_check_observations(
    instance: DagsterInstance, after: int, families: Sequence[str], owners: Owners
) -> tuple[list[Observation], int]:
    """Check evaluations after the cursor that belong to `families`, and the new cursor.

    Reads the cross-run event index by storage id: on SQLite instances check evaluations are mirrored
    there, on PostgreSQL it is the one event table, so one cursor means the same on both.
    """
    observations: list[Observation] = []
    storage = instance.event_log_storage
    for _ in range(MAX_PAGES):
        page = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=PAGE
        )
        for event_id, entry in sorted(page.items()):
            after = max(after, event_id)
            if entry.dagster_event is None:
                continue
            if family_of(entry.dagster_event.asset_check_evaluation_data.check_name) in families:
                observations.append(check_observation(event_id, entry, owners))
        if len(page) < PAGE:
            break
    return observations, after


def _run_system(instance: DagsterInstance, run_id: str) -> str | None:
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run else {}
    for key, value in tags.items():
        if (key == "system" or key.endswith("/system")) and value in ROLES:
            return value
    return None


def _root_message(error: SerializableErrorInfo) -> str:
    """The innermost cause: the user's own exception, not Dagster's step-wrapping error around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def run_observation(record: EventLogRecord, instance: DagsterInstance, owners: Owners) -> Observation:
    """A run's failure (with its failed steps) or success, as an observation of its job's problem."""
    entry = record.event_log_entry
    job = entry.job_name or "unknown job"
    failing = entry.dagster_event_type == DagsterEventType.RUN_FAILURE
    base = dict(
        problem_key=problem_key_for_job(job),
        kind="run",
        family=RUNS,
        failing=failing,
        event_id=record.storage_id,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        run_id=entry.run_id,
        job=job,
    )
    if not failing:
        return Observation(**base)
    steps = instance.all_logs(entry.run_id, of_type=DagsterEventType.STEP_FAILURE)
    failed_steps = sorted({step.step_key for step in steps if step.step_key})
    errors = [
        _root_message(step.dagster_event.step_failure_data.error)
        for step in steps
        if step.dagster_event and step.dagster_event.step_failure_data.error
    ]
    failure = entry.dagster_event.job_failure_data if entry.dagster_event else None
    reason = (errors[0] if errors else None) or (_root_message(failure.error) if failure and failure.error else None)
    reason = (reason or entry.message or "no error recorded").strip().splitlines()[0][:300]
    system = _run_system(instance, entry.run_id)
    return Observation(
        **base,
        severity="CRITICAL",
        system=system,
        summary=f"Job {job} failed: {reason}",
        evidence={
            "run_id": entry.run_id,
            "failed_steps": failed_steps,
            "failure_reason": failure.failure_reason.value if failure and failure.failure_reason else None,
            "counts": {"failed_steps": len(failed_steps)},
            "sample_ids": [],
            "event_id": record.storage_id,
        },
        next_action=(
            f"Open run {entry.run_id} in the Dagster UI, read the failed steps' errors, fix the cause and "
            "re-execute from failure."
        ),
        owner=owners.of(system),
    )


def read_run_observations(instance: DagsterInstance, after: int, owners: Owners) -> tuple[list[Observation], int]:
    """Run failures and successes after the cursor, in event order, and the new cursor.

    Failures and successes are two queries; when one page is full, the cursor stops at its last event so
    nothing of the other kind before it is skipped, and nothing after it is read twice.
    """
    kinds = (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_SUCCESS)
    results = [
        instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=kind, after_storage_id=after), limit=PAGE, ascending=True
        )
        for kind in kinds
    ]
    records = [record for result in results for record in result.records]
    full = [result.records[-1].storage_id for result in results if result.has_more and result.records]
    bound = min(full) if full else max((record.storage_id for record in records), default=after)
    kept = sorted((r for r in records if r.storage_id <= bound), key=lambda r: r.storage_id)
    return [run_observation(record, instance, owners) for record in kept], bound


# sensors ------------------------------------------------------------------------------------------------


Reader = Callable[[DagsterInstance, int, Owners], tuple[list[Observation], int]]


def _tick(context: SensorEvaluationContext, warehouse: WarehouseResource, families: Sequence[str], read: Reader):
    """One tick: read new events, record what opened or cleared, deliver what waits; never raises for a sink."""
    cursor = TickCursor.parse(context.cursor)
    config = load_monitoring()
    observations, after = read(context.instance, cursor.after, config.owners)
    if not observations and not cursor.pending:
        context.update_cursor(TickCursor(after, False).dump())
        return SkipReason("no new evaluations; no notice waiting")
    sinks = configured_sinks(config)
    store = warehouse.open()
    ensure_alerts_table(store)
    applied = apply_observations(store, observations, [sink.name for sink in sinks])
    delivered = deliver_pending(
        store, sinks, config.alerts.delivery_attempts, config.alerts.delivery_timeout_seconds, families=families
    )
    context.update_cursor(TickCursor(after, delivered.still_pending > 0).dump())
    for error in delivered.errors:
        context.log.warning(f"alert delivery failed, retried next tick: {error}")
    return SkipReason(
        f"{len(observations)} evaluations read; {len(applied.opened)} opened, {len(applied.resolved)} resolved; "
        f"{delivered.sent} notices sent, {delivered.still_pending} waiting"
    )


def check_alert_sensor(name: str, families: Sequence[str], description: str) -> SensorDefinition:
    """A sensor alerting on the asset checks of `families` (see `family_of`)."""

    def read(instance: DagsterInstance, after: int, owners: Owners) -> tuple[list[Observation], int]:
        return read_check_observations(instance, after, families, owners)

    @sensor(
        name=name,
        description=description,
        minimum_interval_seconds=TICK_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SkipReason:
        return _tick(context, warehouse, families, read)

    return _sensor


def run_alert_sensor(name: str = "failed_run_alerts") -> SensorDefinition:
    """A sensor alerting once per job whose run failed, and once more when a later run of it succeeds."""

    @sensor(
        name=name,
        description="Alerts once when a job's run fails; a recovery notice when a later run of it succeeds.",
        minimum_interval_seconds=TICK_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SkipReason:
        return _tick(context, warehouse, [RUNS], read_run_observations)

    return _sensor


drift_alerts = check_alert_sensor(
    "drift_alerts", ["drift"], "Alerts on schema drift, volume drops and freshness checks, once per problem."
)
missing_record_alerts = check_alert_sensor(
    "missing_record_alerts",
    ["missing_records"],
    "Alerts on completeness and reconciliation checks (missing or mismatched records), once per problem.",
)
connector_health_alerts = check_alert_sensor(
    "connector_health_alerts",
    ["connector_health"],
    "Alerts on connector health, downtime and credential expiry checks, once per problem.",
)
traffic_drop_alerts = check_alert_sensor(
    "traffic_drop_alerts", ["traffic"], "Alerts on sudden traffic drops, once per problem."
)
failed_check_alerts = check_alert_sensor(
    "failed_check_alerts", [OTHER_CHECKS], "Alerts on every other failed asset check, once per problem."
)
failed_run_alerts = run_alert_sensor()

sensors: list[SensorDefinition] = [
    failed_check_alerts,
    drift_alerts,
    missing_record_alerts,
    connector_health_alerts,
    traffic_drop_alerts,
    failed_run_alerts,
]
