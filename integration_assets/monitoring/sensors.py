"""Sensors that turn failed asset checks and failed runs into alerts, once per problem.

Each sensor reads the instance's event log after its cursor (an event storage id), so it works the same on
SQLite and PostgreSQL instances and never reads an evaluation twice in normal operation. Per problem, the
newest evaluation read decides: failing opens an alert (if none is open), passing resolves the open one. A
failure and its recovery read in the same tick therefore send nothing, by design: the problem is already
over, and the Dagster UI keeps both evaluations (see monitoring/alerts.py). A failing evaluation of an open
problem that raises its severity (WARNING → CRITICAL) sends one `escalated` notice.

Observations carry the identity of the instance they were read from (its run storage id), so a reset
instance or a switch from SQLite to PostgreSQL, which numbers its events afresh, is told apart from a replay.

Check sensors are split by family (drift, missing records, connector health, traffic) so each shows up
on its own in the UI with its own ticks; `family_of` assigns every check name to exactly one family, and
`failed_check_alerts` takes the rest, so no check alerts twice. One sensor handles both failures and
successes of runs, in event order, so a recovery is never processed before the failure it clears. A job's
runs are one problem, except the implicit asset job (`__ASSET_JOB`, every materialization launched from the
UI, and `materialize()`): its runs select unrelated assets, so a failed run is a problem per asset it failed
to materialize (`run:__ASSET_JOB:<asset>`), and a successful run clears only the assets it materialized.

Checks that do not carry this project's evidence (Dagster's own freshness checks, for one) still make a
readable alert: the summary from the evaluation's description, the next action from the check's family,
the system from the asset key when it starts with a system role.

Sensors are RUNNING by default: alerting that someone must remember to switch on is alerting that is off.
They cost little when idle (a tick that finds no new event and nothing pending does not open the
warehouse), write to a local JSON-lines file by default, and post to a webhook only once it is configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
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
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagster._core.definitions.materialize import EPHEMERAL_JOB_NAME
from dagster._core.definitions.metadata import TimestampMetadataValue
from dagster._utils.error import SerializableErrorInfo

from integration_assets.core.monitoring_config import Owners, check_roles, load_monitoring
from integration_assets.core.resources import WarehouseResource
from integration_assets.monitoring.alerts import (
    Observation,
    apply_observations,
    ensure_alerts_table,
    problem_key_for_check,
    problem_key_for_job,
    problem_key_for_job_asset,
)
from integration_assets.monitoring.sinks import configured_sinks, deliver_pending
from integration_assets.systems import CATALOG

__all__ = [
    "CHECK_FAMILIES",
    "OTHER_CHECKS",
    "RUNS",
    "SENSOR_FAMILIES",
    "check_alert_sensor",
    "family_of",
    "instance_identity",
    "read_check_observations",
    "read_run_observations",
    "run_alert_sensor",
    "run_observations",
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
ROLES = CATALOG.roles
PAGE = 1000  # events read per query
MAX_PAGES = 20  # per tick; the rest waits for the next tick, the cursor says where to resume
TICK_SECONDS = 60


# The next action of a failed check that names none (Dagster's own checks); `{asset}` and `{check}` are filled.
DEFAULT_NEXT_ACTIONS: dict[str, str] = {
    "freshness": "Asset {asset} has not been materialized within its freshness window: see on the Runs page "
    "whether its scheduled job still runs and succeeds, fix what stops it, then materialize {asset}.",
    "drift": "Open asset {asset} in the Dagster UI, read check {check}: compare the vendor's fields and volume "
    "with the raw contract and the last runs.",
    "missing_records": "Open asset {asset} in the Dagster UI, read the records table of check {check}, correct "
    "the records in the owning system or re-sync, then run the check again.",
    "connector_health": "Open asset {asset} in the Dagster UI, read check {check}; look at the failed calls of "
    "ops.api_calls for the system (error category, endpoint) and the vendor's status page.",
    "traffic": "Open asset {asset} in the Dagster UI, read check {check}; see whether the scheduled syncs still "
    "run and the vendor answers.",
    OTHER_CHECKS: "Open asset {asset} in the Dagster UI, read the latest evaluation of check {check}.",
}


def family_of(check_name: str) -> str:
    for family, pattern in CHECK_FAMILIES.items():
        if pattern.search(check_name):
            return family
    return OTHER_CHECKS


def instance_identity(instance: DagsterInstance) -> str:
    """Which instance numbered the events read: its run storage's id (a UUID kept in the storage itself), so a
    new DAGSTER_HOME or another storage (SQLite → PostgreSQL) is another identity. `instance.wipe()` keeps it."""
    try:
        return f"run_storage:{instance.run_storage.get_run_storage_id()}"
    except Exception:  # a storage without the id: its kind and home tell instances apart well enough
        return f"{type(instance.event_log_storage).__name__}:{instance.root_directory}"


def is_implicit_asset_job(job: str) -> bool:
    """The job every materialization from the UI (and `materialize()`) runs as, whatever assets it selects."""
    return job.startswith(IMPLICIT_ASSET_JOB_NAME) or job == EPHEMERAL_JOB_NAME


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


def _minutes_since_update(evaluation: AssetCheckEvaluation, at: float) -> dict[str, float]:
    """For Dagster's freshness checks (timestamps, no numbers): how long ago the asset last updated."""
    updated = evaluation.metadata.get("dagster/last_updated_timestamp")
    if isinstance(updated, TimestampMetadataValue) and updated.value:
        return {"minutes_since_update": round((at - updated.value) / 60, 1)}
    return {}


def check_observation(event_id: int, entry: EventLogEntry, owners: Owners, source: str = "") -> Observation:
    """One asset check evaluation as an observation, with the evidence every check of the project carries.

    A check that sets no `summary`, `next_action` or `system` (Dagster's freshness checks) gets its summary
    from its description, a next action by family, and its system from the asset key's first part."""
    assert entry.dagster_event is not None
    evaluation = entry.dagster_event.asset_check_evaluation_data
    asset = evaluation.asset_key.to_user_string()
    meta = _metadata(evaluation)
    system = _system_of(evaluation.asset_key.path, meta.get("system"))
    sample_ids = [part.strip() for part in str(meta.get("sample_ids") or "").split(",") if part.strip()]
    family = family_of(evaluation.check_name)
    summary = str(
        meta.get("summary")
        or (f"{asset}: {evaluation.description}" if evaluation.description else "")
        or f"check {evaluation.check_name} on {asset} failed"
    )
    kind = "freshness" if "freshness" in evaluation.check_name else family
    template = DEFAULT_NEXT_ACTIONS.get(kind, DEFAULT_NEXT_ACTIONS[OTHER_CHECKS])
    next_action = str(meta.get("next_action") or template.format(asset=asset, check=evaluation.check_name))
    return Observation(
        problem_key=problem_key_for_check(asset, evaluation.check_name),
        kind="check",
        family=family,
        failing=not evaluation.passed,
        event_id=event_id,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        run_id=entry.run_id or None,
        source=source,
        severity="WARNING" if evaluation.severity.value == "WARN" else "CRITICAL",
        system=system,
        asset=asset,
        check_name=evaluation.check_name,
        summary=summary,
        evidence={
            "run_id": entry.run_id,
            "check": f"{asset}:{evaluation.check_name}",
            "counts": _counts(evaluation) | _minutes_since_update(evaluation, entry.timestamp),
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
    source = instance_identity(instance)
    for _ in range(MAX_PAGES):
        page = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=PAGE
        )
        for event_id, entry in sorted(page.items()):
            after = max(after, event_id)
            if entry.dagster_event is None:
                continue
            if family_of(entry.dagster_event.asset_check_evaluation_data.check_name) in families:
                observations.append(check_observation(event_id, entry, owners, source))
        if len(page) < PAGE:
            break
    return observations, after


def _roles_in_tags(tags: Mapping[str, str]) -> set[str]:
    """Roles named by tags: `system: crm` (op tags of source assets), `…/system: crm`, and `system/crm: "true"`
    (run tags of the scheduled jobs, see core/automation.flow_tags)."""
    roles: set[str] = set()
    for key, value in tags.items():
        if (key == "system" or key.endswith("/system")) and value in ROLES:
            roles.add(value)
        elif key.startswith("system/") and key.removeprefix("system/") in ROLES and str(value).lower() == "true":
            roles.add(key.removeprefix("system/"))
    return roles


@dataclass(frozen=True)
class _Plan:
    """What a run's execution plan says of its steps: their op tags and the assets they materialize."""

    step_tags: dict[str, dict[str, str]]
    step_assets: dict[str, list[str]]


def _plan(instance: DagsterInstance, run: DagsterRun | None) -> _Plan:
    snapshot = (
        instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        if run is not None and run.execution_plan_snapshot_id
        else None
    )
    if snapshot is None:
        return _Plan({}, {})
    tags = {step.key: dict(step.tags or {}) for step in snapshot.steps}
    assets = {
        step.key: [
            output.properties.asset_key.to_user_string()
            for output in step.outputs
            if output.properties is not None and output.properties.asset_key is not None
        ]
        for step in snapshot.steps
    }
    return _Plan(tags, assets)


def _run_system(run: DagsterRun | None, plan: _Plan, steps: Sequence[str], assets: Sequence[str]) -> str | None:
    """The system a failure concerns: the failed steps' op tags first (source assets carry `system`), then
    the failed assets' key prefix, then the run's tags; several systems are named together."""
    roles: set[str] = set()
    for step in steps:
        roles |= _roles_in_tags(plan.step_tags.get(step, {}))
    if not roles:
        roles = {asset.split("/")[0] for asset in assets if asset.split("/")[0] in ROLES}
    if not roles and run is not None:
        roles = _roles_in_tags(run.tags)
    return ", ".join(sorted(roles)) or None


def _root_message(error: SerializableErrorInfo) -> str:
    """The innermost cause: the user's own exception, not Dagster's step-wrapping error around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _materialized(instance: DagsterInstance, run_id: str) -> set[str]:
    """The assets a run materialized."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {
        event.dagster_event.asset_key.to_user_string()
        for event in events
        if event.dagster_event is not None and event.dagster_event.asset_key is not None
    }


def run_observations(record: EventLogRecord, instance: DagsterInstance, owners: Owners, source: str = ""):
    """A run's failure (with its failed steps) or success, as observations of its job's problem.

    For the implicit asset job, one observation per asset: a failure opens a problem per asset its failed
    steps did not materialize; a success clears only the assets it materialized."""
    entry = record.event_log_entry
    job = entry.job_name or "unknown job"
    failing = entry.dagster_event_type == DagsterEventType.RUN_FAILURE
    implicit = is_implicit_asset_job(job)
    run = instance.get_run_by_id(entry.run_id)
    base = dict(
        kind="run",
        family=RUNS,
        failing=failing,
        event_id=record.storage_id,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        run_id=entry.run_id,
        job=job,
        source=source,
    )
    if not failing:
        if not implicit:
            return [Observation(problem_key=problem_key_for_job(job), **base)]
        assets = _materialized(instance, entry.run_id)
        succeeded = instance.all_logs(entry.run_id, of_type=DagsterEventType.STEP_SUCCESS)
        keys = [problem_key_for_job_asset(job, asset) for asset in sorted(assets)]
        keys += [problem_key_for_job_asset(job, f"step {e.step_key}") for e in succeeded if e.step_key]
        return [Observation(problem_key=key, **base) for key in [problem_key_for_job(job), *keys]]
    steps = instance.all_logs(entry.run_id, of_type=DagsterEventType.STEP_FAILURE)
    failed_steps = sorted({step.step_key for step in steps if step.step_key})
    plan = _plan(instance, run)
    materialized = _materialized(instance, entry.run_id)
    failed_assets = sorted({asset for step in failed_steps for asset in plan.step_assets.get(step, [])} - materialized)
    errors = [
        _root_message(step.dagster_event.step_failure_data.error)
        for step in steps
        if step.dagster_event and step.dagster_event.step_failure_data.error
    ]
    failure = entry.dagster_event.job_failure_data if entry.dagster_event else None
    reason = (errors[0] if errors else None) or (_root_message(failure.error) if failure and failure.error else None)
    reason = (reason or entry.message or "no error recorded").strip().splitlines()[0][:300]
    system = _run_system(run, plan, failed_steps, failed_assets)

    def observation(problem_key: str, what: str, assets: Sequence[str]) -> Observation:
        return Observation(
            problem_key=problem_key,
            **base,
            severity="CRITICAL",
            system=system,
            asset=", ".join(assets) or None,
            summary=f"{what} failed: {reason}",
            evidence={
                "run_id": entry.run_id,
                "failed_steps": failed_steps,
                "failed_assets": failed_assets,
                "flow": run.tags.get("integration/flow") if run is not None else None,  # automation runs too
                "failure_reason": failure.failure_reason.value if failure and failure.failure_reason else None,
                "counts": {"failed_steps": len(failed_steps)},
                "sample_ids": [],
                "event_id": record.storage_id,
            },
            next_action=(
                f"Open run {entry.run_id} in the Dagster UI, read the failed steps' errors, fix the cause and "
                + ("materialize the asset again." if implicit else "re-execute from failure.")
            ),
            owner=owners.of(system),
        )

    if not implicit:
        return [observation(problem_key_for_job(job), f"Job {job}", failed_assets)]
    # the implicit asset job: a problem per asset that failed (per failed step when it names no asset)
    if not failed_assets and run is not None and run.asset_selection and not failed_steps:
        failed_assets = sorted({key.to_user_string() for key in run.asset_selection} - materialized)
    if failed_assets:
        return [
            observation(problem_key_for_job_asset(job, asset), f"Materializing {asset}", [asset])
            for asset in failed_assets
        ]
    if failed_steps:
        return [
            observation(problem_key_for_job_asset(job, f"step {step}"), f"Step {step}", []) for step in failed_steps
        ]
    return [observation(problem_key_for_job(job), f"Run of {job}", [])]


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
    source = instance_identity(instance)
    return [o for record in kept for o in run_observations(record, instance, owners, source)], bound


# sensors ------------------------------------------------------------------------------------------------


Reader = Callable[[DagsterInstance, int, Owners], tuple[list[Observation], int]]


def _tick(context: SensorEvaluationContext, warehouse: WarehouseResource, families: Sequence[str], read: Reader):
    """One tick: read new events, record what opened or cleared, deliver what waits; never raises for a sink."""
    cursor = TickCursor.parse(context.cursor)
    config = check_roles(load_monitoring(), ROLES)
    observations, after = read(context.instance, cursor.after, config.owners)
    if not observations and not cursor.pending:
        context.update_cursor(TickCursor(after, False).dump())
        return SkipReason("no new evaluations; no notice waiting")
    sinks = configured_sinks(config)
    store = warehouse.open()
    ensure_alerts_table(store)
    applied = apply_observations(store, observations, [sink.name for sink in sinks])
    delivered = deliver_pending(
        store,
        sinks,
        config.alerts.delivery_attempts,
        config.alerts.delivery_timeout_seconds,
        families=families,
        deadline_seconds=config.alerts.delivery_deadline_seconds,
    )
    context.update_cursor(TickCursor(after, delivered.still_pending > 0).dump())
    for error in delivered.errors:
        context.log.warning(f"alert delivery failed, retried next tick: {error}")
    return SkipReason(
        f"{len(observations)} evaluations read; {len(applied.opened)} opened, {len(applied.escalated)} escalated, "
        f"{len(applied.resolved)} resolved; "
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

# which check families each alert sensor watches (by sensor name); every family has exactly one sensor
SENSOR_FAMILIES: dict[str, list[str]] = {
    "failed_check_alerts": [OTHER_CHECKS],
    "drift_alerts": ["drift"],
    "missing_record_alerts": ["missing_records"],
    "connector_health_alerts": ["connector_health"],
    "traffic_drop_alerts": ["traffic"],
    "failed_run_alerts": [RUNS],
}

sensors: list[SensorDefinition] = [
    failed_check_alerts,
    drift_alerts,
    missing_record_alerts,
    connector_health_alerts,
    traffic_drop_alerts,
    failed_run_alerts,
]
