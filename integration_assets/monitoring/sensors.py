"""Sensors that turn failed asset checks, failed runs and stale assets into alerts, once per problem.

Each sensor reads the instance's event log after its cursor, so it works the same on SQLite and PostgreSQL
instances and never reads an evaluation twice in normal operation: the check and freshness sensors through
`core/dagster_adapter.read_events_after` (the public `get_event_records` with the cursor the instance's
storage needs), `failed_run_alerts` through the public `fetch_run_status_changes` (`ended_records_after`),
whose storage ids are instance-wide on every storage. Per problem, the newest evaluation read decides:
failing opens an alert (if none is open), passing resolves the open one. A failure and its recovery read in
the same tick therefore send nothing, by design: the problem is already over, and the Dagster UI keeps both
evaluations (see monitoring/alerts.py). A failing evaluation of an open problem that raises its severity
(WARNING → CRITICAL) sends one `escalated` notice.

Observations carry the identity of the instance they were read from (its run storage id), so a reset
instance or a switch from SQLite to PostgreSQL, which numbers its events afresh, is told apart from a replay.

Check sensors are split by family (drift, missing records, connector health, traffic) so each shows up
on its own in the UI with its own ticks; `family_of` assigns every check name to exactly one family, and
`failed_check_alerts` takes the checks no family claims (today the `contract` checks of the raw and
canonical assets, `accounting_balances`, and the write-back assets' `outbox_drained`), so no check alerts
twice. One sensor handles both failures and successes of runs, in event order, so a recovery is never
processed before the failure it clears. A job's runs are one problem, except the implicit asset job
(`__ASSET_JOB`, every materialization launched from the UI, and `materialize()`): its runs select unrelated
assets, so a failed run is a problem per asset it failed to materialize (`run:__ASSET_JOB:<asset>`), and a
successful run clears only the assets it materialized.

Freshness has one mechanism: the assets' `FreshnessPolicy` (warn and fail windows of monitoring.yaml),
evaluated by Dagster's freshness daemon, which records a `FRESHNESS_STATE_CHANGE` event whenever an asset's
state changes. `freshness_alerts` reads those: WARN opens a WARNING alert, FAIL opens one as CRITICAL (or
escalates the open WARNING), PASS resolves it, one problem per asset (`freshness:<asset>`).

Whenever a tick opened, escalated or resolved an alert (or delivered a notice), the sensor reports the
`ops/alerts` asset with the open alerts as a table (`OPS_ALERTS`), so the Dagster UI shows what is open,
since when and who was told; its tick log names each alert that changed. A tick that changed nothing
skips, saying what it read.

Sensors are RUNNING by default: alerting that someone must remember to switch on is alerting that is off.
They cost little when idle (a tick that finds no new event and nothing pending does not open the
warehouse), write to a local JSON-lines file by default, and post to a webhook only once it is configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    EventLogEntry,
    EventLogRecord,
    FloatMetadataValue,
    IntMetadataValue,
    MetadataValue,
    RepositoryDefinition,
    RunStatusChangeRecordsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TableColumn,
    TableRecord,
    TableSchema,
    sensor,
)

from integration_assets.core.columns import sql_columns, storage_kind, table_metadata
from integration_assets.core.dagster_adapter import (
    EPHEMERAL_JOB_NAME,
    IMPLICIT_ASSET_JOB_NAME,
    EventPosition,
    SerializableErrorInfo,
    execution_plan_snapshot,
    freshness_windows_minutes,
    instance_identity,
    owners_in_beta,
    read_events_after,
    run_events,
)
from integration_assets.core.monitoring_config import Owners, check_roles, load_monitoring
from integration_assets.core.owners import team_owners
from integration_assets.core.policies import freshness_windows
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import (
    ALERTS_COLUMN_DESCRIPTIONS,
    ALERTS_COLUMNS,
    ALERTS_TABLE,
    Alert,
    Applied,
    Observation,
    alert_of,
    apply_observations,
    ensure_alerts_table,
    load_alerts,
    problem_key_for_check,
    problem_key_for_freshness,
    problem_key_for_job,
    problem_key_for_job_asset,
)
from integration_assets.monitoring.sinks import Delivered, configured_sinks, deliver_pending
from integration_assets.systems import CATALOG

__all__ = [
    "CHECK_FAMILIES",
    "FRESHNESS",
    "OPS_ALERTS",
    "OTHER_CHECKS",
    "RUNS",
    "SENSOR_FAMILIES",
    "alert_sensor",
    "check_alert_sensor",
    "ended_records_after",
    "family_of",
    "freshness_alert_sensor",
    "freshness_observation",
    "instance_identity",
    "open_alerts_materialization",
    "ops_alerts_asset",
    "read_check_observations",
    "read_freshness_observations",
    "read_run_observations",
    "run_alert_sensor",
    "run_observations",
    "sensors",
    "tick_outcome",
]

# Which sensor watches which check, by the check's name (first match wins); extend here, nowhere else.
CHECK_FAMILIES: dict[str, re.Pattern[str]] = {
    "traffic": re.compile(r"traffic"),
    "connector_health": re.compile(r"connector_health|health|downtime|credential|latency|success_rate|rate_limit"),
    "drift": re.compile(r"drift|schema|volume"),
    "missing_records": re.compile(r"complete|missing|reconcil|invoiced|paid|customer_master|known_people"),
}
OTHER_CHECKS = "checks"  # every check no family above claims
RUNS = "runs"
FRESHNESS = "freshness"  # the freshness daemon's state changes, not a check
ROLES = CATALOG.roles
PAGE = 1000  # events read per query
MAX_PAGES = 20  # per tick; the rest waits for the next tick, the cursor says where to resume
TICK_SECONDS = 60
OPS_ALERTS = AssetKey(["ops", "alerts"])
OPEN_ALERTS_SHOWN = 200  # rows of the open-alerts table; `open_count` counts them all


# The next action of a failed check whose evidence names none (every check of the project names its own, through
# core/evidence.check_result; a check added without it gets these); `{asset}` and `{check}` are filled.
DEFAULT_NEXT_ACTIONS: dict[str, str] = {
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
FRESHNESS_NEXT_ACTION = (
    "Asset {asset} has not been materialized within its freshness window: see on the Runs page whether its "
    "scheduled job or automation still runs and succeeds, fix what stops it, then materialize {asset}."
)


def family_of(check_name: str) -> str:
    for family, pattern in CHECK_FAMILIES.items():
        if pattern.search(check_name):
            return family
    return OTHER_CHECKS


def is_implicit_asset_job(job: str) -> bool:
    """The job every materialization from the UI (and `materialize()`) runs as, whatever assets it selects."""
    return job.startswith(IMPLICIT_ASSET_JOB_NAME) or job == EPHEMERAL_JOB_NAME


@dataclass(frozen=True)
class TickCursor:
    """How far the event log was read, and whether a notice of this sensor still waits for a sink."""

    after: EventPosition = field(default_factory=EventPosition)
    pending: bool = False

    @classmethod
    def parse(cls, text: str | None) -> TickCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(EventPosition.parse(data.get("after")), bool(data.get("pending", False)))

    def dump(self) -> str:
        return json.dumps({"after": self.after.dump(), "pending": self.pending})


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


def check_observation(event_id: int, entry: EventLogEntry, owners: Owners, source: str = "") -> Observation:
    """One asset check evaluation as an observation, with the evidence every check of the project carries.

    A check that sets no `summary`, `next_action` or `system` gets its summary from its description, a next
    action by family, and its system from the asset key's first part."""
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
    template = DEFAULT_NEXT_ACTIONS.get(family, DEFAULT_NEXT_ACTIONS[OTHER_CHECKS])
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
            "counts": _counts(evaluation),
            "sample_ids": sample_ids,
            "event_id": event_id,
        },
        next_action=next_action,
        owner=owners.of(system),
    )


def _observations(
    instance: DagsterInstance,
    event_type: DagsterEventType,
    after: EventPosition,
    observe: Callable[[int, EventLogEntry], Observation | None],
) -> tuple[list[Observation], EventPosition]:
    """What `observe` makes of each event of `event_type` after the cursor (None: not this sensor's), and the
    new cursor; at most MAX_PAGES pages a tick, the cursor says where the next resumes."""
    observations: list[Observation] = []
    for _ in range(MAX_PAGES):
        page, after, more = read_events_after(instance, event_type, after, PAGE)
        observations += [
            seen for event_id, entry in page if entry.dagster_event is not None and (seen := observe(event_id, entry))
        ]
        if not more:
            break
    return observations, after


def read_check_observations(
    instance: DagsterInstance, after: EventPosition, families: Sequence[str], owners: Owners
) -> tuple[list[Observation], EventPosition]:
    """Check evaluations after the cursor that belong to `families`, and the new cursor."""
    source = instance_identity(instance)

    def observe(event_id: int, entry: EventLogEntry) -> Observation | None:
        if family_of(entry.dagster_event.asset_check_evaluation_data.check_name) not in families:
            return None
        return check_observation(event_id, entry, owners, source)

    return _observations(instance, DagsterEventType.ASSET_CHECK_EVALUATION, after, observe)


def _minutes_text(minutes: float) -> str:
    return f"{minutes:.1f}".rstrip("0").rstrip(".")


def _windows(repository: RepositoryDefinition | None, key: AssetKey) -> tuple[float, float | None]:
    """(fail, warn) minutes of the asset's policy as declared; else monitoring.yaml's for its layer."""
    declared = freshness_windows_minutes(repository, key)
    if declared is not None:
        return declared
    fail, warn = freshness_windows().windows("source" if key.path[0] in ROLES else "canonical")
    return float(fail), float(warn)


def freshness_observation(
    event_id: int,
    entry: EventLogEntry,
    owners: Owners,
    source: str,
    windows: tuple[float, float | None],
    last_update: float | None,
) -> Observation:
    """One freshness state change as an observation of the asset's freshness problem.

    WARN and FAIL are failing (WARNING, CRITICAL); PASS is passing. UNKNOWN (no materialization to judge)
    and NOT_APPLICABLE (no policy any more) are passing too: the policy no longer says the data is late."""
    assert entry.dagster_event is not None
    change = entry.dagster_event.asset_freshness_state_change_data
    state, previous = str(change.new_state.value), str(change.previous_state.value)
    asset = change.key.to_user_string()
    system = change.key.path[0] if change.key.path[0] in ROLES else None
    fail, warn = windows
    window_text = (f"warn after {_minutes_text(warn)} min, " if warn else "") + f"fail after {_minutes_text(fail)} min"
    age = round((entry.timestamp - last_update) / 60, 1) if last_update is not None else None
    last_text = (
        f"; last materialized {datetime.fromtimestamp(last_update, UTC):%Y-%m-%d %H:%M} UTC, "
        f"{_minutes_text(age)} min before"
        if last_update is not None and age is not None
        else ""
    )
    limit = fail if state == "FAIL" or not warn else warn
    failing = state in ("WARN", "FAIL")
    summary = (
        f"{asset} not materialized for over {_minutes_text(limit)} min: freshness {state} ({window_text}{last_text})"
        if failing
        else f"{asset}: freshness {state} ({window_text}{last_text})"
    )
    return Observation(
        problem_key=problem_key_for_freshness(asset),
        kind="freshness",
        family=FRESHNESS,
        failing=failing,
        event_id=event_id,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        run_id=None,
        source=source,
        severity="CRITICAL" if state == "FAIL" else "WARNING",
        system=system,
        asset=asset,
        summary=summary,
        evidence={
            "freshness_state": state,
            "previous_state": previous,
            "fail_window_minutes": fail,
            "warn_window_minutes": warn,
            "last_materialized_at": datetime.fromtimestamp(last_update, UTC).isoformat() if last_update else None,
            "counts": {"minutes_since_update": age} if age is not None else {},
            "sample_ids": [],
            "event_id": event_id,
        },
        next_action=FRESHNESS_NEXT_ACTION.format(asset=asset),
        owner=owners.of(system),
    )


def read_freshness_observations(
    instance: DagsterInstance, after: EventPosition, owners: Owners, repository: RepositoryDefinition | None = None
) -> tuple[list[Observation], EventPosition]:
    """The freshness daemon's state changes after the cursor, and the new cursor."""
    source = instance_identity(instance)

    def observe(event_id: int, entry: EventLogEntry) -> Observation:
        change = entry.dagster_event.asset_freshness_state_change_data
        key, late = change.key, change.new_state.value in ("WARN", "FAIL")
        latest = instance.get_latest_materialization_event(key) if late else None  # for the summary only
        last_update = latest.timestamp if latest is not None and latest.timestamp <= entry.timestamp else None
        return freshness_observation(event_id, entry, owners, source, _windows(repository, key), last_update)

    return _observations(instance, DagsterEventType.FRESHNESS_STATE_CHANGE, after, observe)


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
    snapshot = execution_plan_snapshot(instance, run)
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
    events = run_events(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION)
    return {
        event.dagster_event.asset_key.to_user_string()
        for event in events
        if event.dagster_event is not None and event.dagster_event.asset_key is not None
    }


def run_observations(
    record: EventLogRecord, instance: DagsterInstance, owners: Owners, source: str = ""
) -> list[Observation]:
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
        succeeded = run_events(instance, entry.run_id, DagsterEventType.STEP_SUCCESS)
        keys = [problem_key_for_job_asset(job, asset) for asset in sorted(assets)]
        keys += [problem_key_for_job_asset(job, f"step {e.step_key}") for e in succeeded if e.step_key]
        return [Observation(problem_key=key, **base) for key in [problem_key_for_job(job), *keys]]
    steps = run_events(instance, entry.run_id, DagsterEventType.STEP_FAILURE)
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


def ended_records_after(
    instance: DagsterInstance, kinds: Sequence[DagsterEventType], after: int, page: int
) -> tuple[list[EventLogRecord], int]:
    """Run status changes of `kinds` (run success, failure, …) after the storage id `after`, oldest first, and
    the new cursor.

    One query per kind (`fetch_run_status_changes`, whose storage ids are instance-wide on every storage), at
    most `page` records each; when one page is full, the cursor stops at its last event, so nothing of another
    kind before it is skipped and nothing after it is read twice."""
    results = [
        instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=kind, after_storage_id=after), limit=page, ascending=True
        )
        for kind in kinds
    ]
    records = [record for result in results for record in result.records]
    full = [result.records[-1].storage_id for result in results if result.has_more and result.records]
    bound = min(full) if full else max((record.storage_id for record in records), default=after)
    return sorted((r for r in records if r.storage_id <= bound), key=lambda r: r.storage_id), bound


def read_run_observations(
    instance: DagsterInstance, after: EventPosition, owners: Owners
) -> tuple[list[Observation], EventPosition]:
    """Run failures and successes after the cursor, in event order, and the new cursor (`ended_records_after`)."""
    kinds = (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_SUCCESS)
    records, bound = ended_records_after(instance, kinds, after.storage_id, PAGE)
    source = instance_identity(instance)
    observations = [o for record in records for o in run_observations(record, instance, owners, source)]
    return observations, EventPosition(storage_id=bound)


# the ops/alerts asset ------------------------------------------------------------------------------------------


OPEN_ALERTS_SCHEMA = TableSchema(
    columns=[
        TableColumn("problem", "string", description="What failed: check:<asset>:<check>, run:<job>, freshness:…"),
        TableColumn("severity", "string", description="WARNING or CRITICAL"),
        TableColumn("system", "string", description="The system concerned (a catalog role), if one"),
        TableColumn("where", "string", description="The asset and check, or the job"),
        TableColumn("opened_at", "string", description="When the problem was first seen failing (UTC)"),
        TableColumn("escalated_at", "string", description="When its severity last rose (UTC), if it did"),
        TableColumn("summary", "string", description="What the alert said"),
        TableColumn("owner", "string", description="The team told (monitoring.yaml owners)"),
        TableColumn("notified", "string", description="Sinks that received the notice; pending ones marked"),
        TableColumn("sensor_family", "string", description="Which alert sensor watches it"),
    ]
)


def ops_alerts_asset() -> AssetSpec:
    """`ops/alerts`: the open alerts of `ops.alerts`, reported by the alert sensors (no run computes it)."""
    return AssetSpec(
        key=OPS_ALERTS,
        group_name="ops",
        kinds={storage_kind()},
        owners=team_owners(),
        description="The alerts open right now, one row per problem, as the alert sensors last reported them.\n\n"
        "Each alert sensor reports this asset whenever one of its ticks opens, escalates or resolves an alert "
        "(or delivers a notice): metadata `open_alerts` is the table of every open alert of `ops.alerts` "
        "(problem, severity, system, since when, summary, owner, the sinks told), `open_count` how many. The "
        "sensors' tick logs (Automation → sensor → tick → logs) name each alert that changed.",
        metadata=table_metadata(
            ALERTS_TABLE,
            TableSchema(columns=sql_columns(ALERTS_COLUMNS, ALERTS_COLUMN_DESCRIPTIONS, unique=["id"])),
        ),
    )


def _when(moment: Any) -> str:
    if not isinstance(moment, datetime):
        return str(moment or "")
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _notified(row: Mapping[str, Any]) -> str:
    """Per sink, the state of the alert's latest notice to it: the escalation, else the opening (also where
    the escalation is `superseded`: that sink still owed the opening, which carries the escalated evidence);
    pending ones marked."""
    opening = row.get("open_delivery") or {}
    escalation = row.get("escalated_delivery") or {}
    parts = []
    for name in sorted(set(opening) | set(escalation)):
        state = escalation.get(name)
        if state is None or state.get("status") == "superseded":
            state = opening.get(name) or state or {}
        status = state.get("status")
        parts.append(name if status == "delivered" else f"{name} ({status})")
    return ", ".join(parts) or "no sink configured"


def open_alerts_materialization(store: Warehouse) -> AssetMaterialization:
    """The `ops/alerts` report: every open alert as a table, oldest first, and how many."""
    rows = load_alerts(store, status="open")
    records = [
        TableRecord(
            {
                "problem": row["problem_key"],
                "severity": row["severity"],
                "system": row.get("system") or "",
                "where": alert_of(row).where,
                "opened_at": _when(row["opened_at"]),
                "escalated_at": _when(row.get("escalated_at")),
                "summary": row["summary"],
                "owner": row["owner"],
                "notified": _notified(row),
                "sensor_family": row["family"],
            }
        )
        for row in rows[:OPEN_ALERTS_SHOWN]
    ]
    return AssetMaterialization(
        asset_key=OPS_ALERTS,
        description=f"{len(rows)} alert(s) open",
        metadata={
            "open_alerts": MetadataValue.table(records, schema=OPEN_ALERTS_SCHEMA),
            "open_count": MetadataValue.int(len(rows)),
            "dagster/row_count": MetadataValue.int(len(rows)),
            "critical_count": MetadataValue.int(sum(1 for row in rows if row["severity"] == "CRITICAL")),
        },
    )


def _log_changes(context: SensorEvaluationContext, applied: Applied) -> None:
    """The tick log (shown by the UI under the sensor's ticks) names each alert that changed."""

    def line(verb: str, alert: Alert) -> str:
        return f"{verb} {alert.severity} alert {alert.problem_key} for {alert.owner}: {alert.summary[:300]}"

    for alert in applied.opened:
        context.log.info(line("opened", alert))
    for alert in applied.escalated:
        context.log.info(line("escalated to", alert))
    for alert in applied.resolved:
        context.log.info(line("resolved", alert))


def tick_outcome(
    context: SensorEvaluationContext,
    store: Warehouse,
    applied: Applied,
    delivered: Delivered,
    message: str,
    cursor: str,
) -> SensorResult | SkipReason:
    """What a tick returns: a report of `ops/alerts` when it changed an alert or delivered a notice (the
    skip message still says what it read), a plain skip otherwise."""
    for error in delivered.errors:
        context.log.warning(f"alert delivery failed, retried next tick: {error}")
    _log_changes(context, applied)
    if not (applied.opened or applied.escalated or applied.resolved or delivered.sent):
        context.update_cursor(cursor)
        return SkipReason(message)
    return SensorResult(skip_reason=message, cursor=cursor, asset_events=[open_alerts_materialization(store)])


# sensors ------------------------------------------------------------------------------------------------


Reader = Callable[[SensorEvaluationContext, EventPosition, Owners], tuple[list[Observation], EventPosition]]


def _tick(
    context: SensorEvaluationContext, warehouse: WarehouseResource, families: Sequence[str], read: Reader
) -> SensorResult | SkipReason:
    """One tick: read new events, record what opened or cleared, deliver what waits; never raises for a sink."""
    cursor = TickCursor.parse(context.cursor)
    config = check_roles(load_monitoring(), ROLES)
    observations, after = read(context, cursor.after, config.owners)
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
    message = (
        f"{len(observations)} evaluations read; {len(applied.opened)} opened, {len(applied.escalated)} escalated, "
        f"{len(applied.resolved)} resolved; {delivered.sent} notices sent, {delivered.still_pending} waiting"
    )
    return tick_outcome(
        context, store, applied, delivered, message, TickCursor(after, delivered.still_pending > 0).dump()
    )


Tick = Callable[[SensorEvaluationContext, WarehouseResource], "SensorResult | SkipReason"]


def alert_sensor(
    name: str, description: str, tick: Tick, minimum_interval_seconds: int = TICK_SECONDS
) -> SensorDefinition:
    """An alerting sensor: RUNNING by default (alerting someone must switch on is off), owned by the default
    team, with the warehouse that keeps `ops.alerts`."""
    with owners_in_beta():

        @sensor(
            name=name,
            description=description,
            minimum_interval_seconds=minimum_interval_seconds,
            default_status=DefaultSensorStatus.RUNNING,
            owners=team_owners(),
        )
        def _sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
            return tick(context, warehouse)

    return _sensor


def check_alert_sensor(name: str, families: Sequence[str], description: str) -> SensorDefinition:
    """A sensor alerting on the asset checks of `families` (see `family_of`)."""

    def read(context: SensorEvaluationContext, after: EventPosition, owners: Owners):
        return read_check_observations(context.instance, after, families, owners)

    return alert_sensor(name, description, lambda context, warehouse: _tick(context, warehouse, families, read))


def run_alert_sensor(name: str = "failed_run_alerts") -> SensorDefinition:
    """A sensor alerting once per job whose run failed, and once more when a later run of it succeeds."""

    def read(context: SensorEvaluationContext, after: EventPosition, owners: Owners):
        return read_run_observations(context.instance, after, owners)

    return alert_sensor(
        name,
        "Alerts once when a job's run fails; a recovery notice when a later run of it succeeds.",
        lambda context, warehouse: _tick(context, warehouse, [RUNS], read),
    )


def _repository(context: SensorEvaluationContext) -> RepositoryDefinition | None:
    try:
        return context.repository_def
    except Exception:  # a context built without definitions (a test's `build_sensor_context()`)
        return None


def freshness_alert_sensor(
    name: str = "freshness_alerts", minimum_interval_seconds: int = TICK_SECONDS
) -> SensorDefinition:
    """A sensor alerting on the freshness daemon's state changes: WARN, FAIL, and PASS again."""

    def read(context: SensorEvaluationContext, after: EventPosition, owners: Owners):
        return read_freshness_observations(context.instance, after, owners, _repository(context))

    return alert_sensor(
        name,
        "Alerts when an asset is late by its freshness policy (the warn and fail windows of monitoring.yaml, "
        "evaluated by Dagster's freshness daemon): WARNING once it passes the warn window, CRITICAL once it "
        "passes the fail window, a recovery notice once it is materialized again.",
        lambda context, warehouse: _tick(context, warehouse, [FRESHNESS], read),
        minimum_interval_seconds,
    )


drift_alerts = check_alert_sensor(
    "drift_alerts", ["drift"], "Alerts on schema drift and volume drops (drift and volume checks), once per problem."
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
    "failed_check_alerts",
    [OTHER_CHECKS],
    "Alerts on the failed asset checks no other alert sensor watches: the contract checks of the raw and "
    "canonical assets, accounting_balances of the canonical assets, outbox_drained of the write-back assets, "
    "and any new check whose name matches no family; once per problem.",
)
failed_run_alerts = run_alert_sensor()
freshness_alerts = freshness_alert_sensor()

# which families each alert sensor watches (by sensor name); every family has exactly one sensor
SENSOR_FAMILIES: dict[str, list[str]] = {
    "failed_check_alerts": [OTHER_CHECKS],
    "drift_alerts": ["drift"],
    "missing_record_alerts": ["missing_records"],
    "connector_health_alerts": ["connector_health"],
    "traffic_drop_alerts": ["traffic"],
    "failed_run_alerts": [RUNS],
    "freshness_alerts": [FRESHNESS],
}

sensors: list[SensorDefinition] = [
    failed_check_alerts,
    drift_alerts,
    missing_record_alerts,
    connector_health_alerts,
    traffic_drop_alerts,
    failed_run_alerts,
    freshness_alerts,
]
