"""The one place that touches Dagster beyond its public API, so that an upgrade breaks here or nowhere.

Everything else in the project imports from `dagster`'s public namespace only (a test says so,
`integration_assets_tests/test_public_apis.py`). Each name below says which public API it waits for; when
Dagster ships it, the entry goes and its callers import the public one.

Event reads across runs use the public (deprecated) `DagsterInstance.get_event_records` with the cursor the
instance's event storage needs. Storages that number events instance-wide (PostgreSQL, the consolidated SQLite
storage, and the index shard that run-sharded SQLite mirrors asset events into) take a plain storage id. The
default SQLite storage keeps each run's events in a file of its own: there `get_event_records` wants a
`RunShardedEventsCursor`, reads the events of every run updated after its `run_updated_after` (plus runless
events) and ignores its id, and the ids it returns are per-run. So on that storage `read_events_after`
orders events by their time (microseconds as the id callers compare), re-reads a few seconds before the newest
event read (an event written by another process a moment late is still seen) and drops the events the cursor
names as read already.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetKey,
    BetaWarning,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    EventLogEntry,
    EventLogRecord,
    EventRecordsFilter,
    RepositoryDefinition,
    RunsFilter,
    RunShardedEventsCursor,
)

# waits for: public constants naming the implicit asset job and the job `materialize()` runs as
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME

# The types the drills forge events and read sensor states with, as Dagster's daemons record them.
# waits for: public freshness state types (the freshness daemon's `FreshnessStateChange` events)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

# waits for: a public name of the type `define_asset_job` returns
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# waits for: a public `EventRecordsFilter` helper telling which events a run-sharded storage mirrors instance-wide
# waits for: a public way to record a past materialization (a stale asset, in a drill)
from dagster._core.events import ASSET_EVENTS, DagsterEvent, StepMaterializationData

# waits for: a public check of an instance's `dagster.yaml` and of a `workspace.yaml` (deploy/ is checked offline)
from dagster._core.instance.config import dagster_instance_config

# waits for: a public enum for `instance.all_instigator_state(instigator_type=...)`
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.workspace.config_schema import ensure_workspace_config

# waits for: a public error type on `DagsterEvent.step_failure_data.error` / `job_failure_data.error`
from dagster._utils.error import SerializableErrorInfo

__all__ = [
    "EPHEMERAL_JOB_NAME",
    "IMPLICIT_ASSET_JOB_NAME",
    "DagsterEvent",
    "EventPosition",
    "FreshnessState",
    "FreshnessStateChange",
    "InstigatorType",
    "PoolNeeds",
    "PoolSnapshot",
    "SerializableErrorInfo",
    "StepMaterializationData",
    "UnresolvedAssetJobDefinition",
    "add_run_tags",
    "dagster_instance_config",
    "ensure_workspace_config",
    "execution_plan_snapshot",
    "free_pool_slots",
    "freshness_windows_minutes",
    "instance_identity",
    "owners_in_beta",
    "read_events_after",
    "read_pool_snapshot",
    "report_run_failed",
    "run_events",
    "run_pool_needs",
]

# waits for: a public constant (dagster._core.definitions.materialize.EPHEMERAL_JOB_NAME); a plain copy,
# since importing that module pulls in the execution machinery for one string
EPHEMERAL_JOB_NAME = "__ephemeral_asset_job__"

OVERLAP_SECONDS = 5.0  # run-sharded SQLite: how far before the newest event read the next read starts again
STUCK_RUN_SECONDS = 24 * 3600  # an in-progress run older than this (a killed `dagster job execute`) is not waited on
_IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """`get_event_records` is deprecated (public until Dagster 2.0): its warning, and only it, is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*get_event_records.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"Use fetch_\w+ instead of get_event_records")
        yield


@contextmanager
def owners_in_beta() -> Iterator[None]:
    """Declaring a sensor's `owners` warns that the parameter is in beta (Dagster 1.13), once per sensor at
    every import: that warning, and only it, is silenced while the sensors are declared.

    waits for: `owners` on sensors out of beta."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Parameter `owners` of ", category=BetaWarning)
        yield


# instance identity and storage kind -------------------------------------------------------------------------


def instance_identity(instance: DagsterInstance) -> str:
    """Which instance numbered the events read: its run storage's id (a UUID kept in the storage itself), so a
    new DAGSTER_HOME or another storage (SQLite → PostgreSQL) is another identity. `instance.wipe()` keeps it.

    waits for: a public `DagsterInstance` id (`run_storage.get_run_storage_id()` is internal)."""
    try:
        return f"run_storage:{instance.run_storage.get_run_storage_id()}"
    except Exception:  # a storage without the id: its kind and home tell instances apart well enough
        return f"{type(instance.event_log_storage).__name__}:{instance.root_directory}"


def _run_sharded(instance: DagsterInstance, event_type: DagsterEventType) -> bool:
    """Whether `get_event_records` reads this event type run by run (default SQLite storage, non-asset events).

    waits for: a public way to learn which cursor `get_event_records` needs (`is_run_sharded` is internal)."""
    return bool(getattr(instance.event_log_storage, "is_run_sharded", False)) and event_type not in ASSET_EVENTS


# event reads across runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventPosition:
    """How far a cross-run read of one event type got: a storage id where the storage numbers events
    instance-wide; on run-sharded SQLite the newest event time read and the events read just before it."""

    storage_id: int = -1
    timestamp: float = 0.0  # run-sharded: the newest event time read
    recent: tuple[str, ...] = field(default=())  # run-sharded: `<run id>/<id>` of events read near `timestamp`

    def dump(self) -> dict[str, Any]:
        return {"storage_id": self.storage_id, "timestamp": self.timestamp, "recent": list(self.recent)}

    @classmethod
    def parse(cls, data: Mapping[str, Any] | int | None) -> EventPosition:
        if data is None:
            return cls()
        if isinstance(data, int):  # a cursor written before positions existed: a storage id
            return cls(storage_id=data)
        return cls(int(data.get("storage_id", -1)), float(data.get("timestamp", 0.0)), tuple(data.get("recent", ())))

    def __str__(self) -> str:
        return json.dumps(self.dump())


def _order_id(entry: EventLogEntry) -> int:
    return round(entry.timestamp * 1_000_000)


def read_events_after(
    instance: DagsterInstance, event_type: DagsterEventType, position: EventPosition, limit: int
) -> tuple[list[tuple[int, EventLogEntry]], EventPosition, bool]:
    """Events of `event_type` after `position`, oldest first, each with an id that orders the instance's
    events (its storage id, or its time in microseconds on run-sharded SQLite); the new position; and
    whether more may wait (a full page)."""
    if not _run_sharded(instance, event_type):
        with _quiet_deprecations():
            records: Sequence[EventLogRecord] = instance.get_event_records(
                EventRecordsFilter(event_type=event_type, after_cursor=position.storage_id),
                limit=limit,
                ascending=True,
            )
        found = [(record.storage_id, record.event_log_entry) for record in records]
        after = max((storage_id for storage_id, _ in found), default=position.storage_id)
        return found, EventPosition(storage_id=after), len(records) >= limit
    return _read_run_sharded(instance, event_type, position)


def _read_run_sharded(
    instance: DagsterInstance, event_type: DagsterEventType, position: EventPosition
) -> tuple[list[tuple[int, EventLogEntry]], EventPosition, bool]:
    """Run-sharded SQLite: every event of the runs updated since a little before the newest event read, and of
    runs still in progress (a run's update time is its start until it ends), minus what was read already."""
    start = position.timestamp - OVERLAP_SECONDS
    now = datetime.now(UTC).timestamp()
    in_progress = instance.get_run_records(filters=RunsFilter(statuses=_IN_PROGRESS))
    started = [
        record.update_timestamp.replace(tzinfo=record.update_timestamp.tzinfo or UTC).timestamp()
        for record in in_progress
    ]
    runs_after = min([start, *(moment for moment in started if moment > now - STUCK_RUN_SECONDS)]) - 1
    cursor = RunShardedEventsCursor(id=0, run_updated_after=datetime.fromtimestamp(max(runs_after, 0), UTC))
    with _quiet_deprecations():
        records = instance.get_event_records(
            EventRecordsFilter(event_type=event_type, after_cursor=cursor), limit=None, ascending=True
        )
    seen = set(position.recent)
    fresh = {
        f"{record.event_log_entry.run_id}/{record.storage_id}": record.event_log_entry
        for record in records
        if record.event_log_entry.timestamp > start
    }
    found = sorted(
        ((_order_id(entry), entry) for key, entry in fresh.items() if key not in seen), key=lambda pair: pair[0]
    )
    newest = max([position.timestamp, *(entry.timestamp for entry in fresh.values())])
    recent = tuple(sorted(key for key, entry in fresh.items() if entry.timestamp > newest - OVERLAP_SECONDS))
    return found, EventPosition(storage_id=-1, timestamp=newest, recent=recent), False


def run_events(
    instance: DagsterInstance, run_id: str, event_type: DagsterEventType | None = None
) -> list[EventLogEntry]:
    """One run's events of one type (all of them for None), in order.

    waits for: a public per-run event read (`EventRecordsFilter` has no run id; `all_logs` is internal)."""
    return list(instance.all_logs(run_id, of_type=event_type))


def execution_plan_snapshot(instance: DagsterInstance, run: DagsterRun | None) -> Any | None:
    """The run's execution plan snapshot (its steps' keys, tags and outputs), or None.

    waits for: a public read of a run's plan (`get_execution_plan_snapshot` is internal)."""
    if run is None or not run.execution_plan_snapshot_id:
        return None
    return instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)


def add_run_tags(instance: DagsterInstance, run_id: str, tags: Mapping[str, str]) -> None:
    """Adds (or replaces) tags of a finished run, as the UI's tag editor does.

    waits for: a public `DagsterInstance.add_run_tags` (present, but not marked public in 1.13)."""
    instance.add_run_tags(run_id, dict(tags))


# concurrency pools ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSnapshot:
    """The instance's concurrency pools as the UI's concurrency page reads them."""

    infos: Mapping[str, Any]  # pool → ConcurrencyKeyInfo (limit, claimed_slots, pending_steps)
    granularity: str  # `op` (default) or `run`


def read_pool_snapshot(instance: DagsterInstance) -> PoolSnapshot | None:
    """Every pool's limit, slot holders and pending steps; None when the storage has no pools.

    waits for: a public `DagsterInstance` read of concurrency info (1.13 has only event-storage methods)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys()))
    granularity = getattr(storage.get_pool_config().pool_granularity, "value", "op")
    return PoolSnapshot(infos, str(granularity))


def free_pool_slots(instance: DagsterInstance, run_id: str) -> None:
    """Frees every pool slot the run holds (the UI's "free slots" action, or `integration-free-slots`).

    waits for: a public `DagsterInstance` method (1.13 has only `event_log_storage.free_concurrency_slots_for_run`
    and the webserver's `freeConcurrencySlotsForRun` mutation)."""
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def report_run_failed(instance: DagsterInstance, run: DagsterRun) -> None:
    """Marks a run that no process runs any more (killed at a timeout) failed, as run monitoring would.

    waits for: a public `DagsterInstance.report_run_failed` (1.13 has it unmarked)."""
    instance.report_run_failed(run)


@dataclass(frozen=True)
class PoolNeeds:
    """Which pools a queued run needs: all of them, and those of its first steps."""

    all_pools: frozenset[str]
    root_pools: frozenset[str]
    unconstrained_roots: bool  # a first step needs no pool


def run_pool_needs(run: DagsterRun) -> PoolNeeds | None:
    """waits for: a public field of `DagsterRun` naming its pools (`run_op_concurrency` is internal)."""
    needs = run.run_op_concurrency
    if needs is None:
        return None
    return PoolNeeds(
        frozenset(needs.all_pools or ()),
        frozenset(needs.root_key_counts or {}),
        bool(needs.has_unconstrained_root_nodes),
    )


# freshness policies ------------------------------------------------------------------------------------------


def freshness_windows_minutes(
    repository: RepositoryDefinition | None, key: AssetKey
) -> tuple[float, float | None] | None:
    """(fail, warn) minutes of the asset's time-window freshness policy, as the definitions declare it.

    waits for: a public read of an asset's `FreshnessPolicy` from a repository (`asset_graph` is internal)."""
    if repository is None:
        return None
    try:
        node = repository.asset_graph.get(key)
    except Exception:  # an asset the code location no longer defines
        return None
    policy = getattr(node, "freshness_policy", None)
    fail = getattr(policy, "fail_window", None)
    if fail is None:
        return None
    warn = getattr(policy, "warn_window", None)
    return (_minutes(fail), _minutes(warn) if warn is not None else None)


def _minutes(window: Any) -> float:
    delta = window.to_timedelta() if hasattr(window, "to_timedelta") else window
    return delta.total_seconds() / 60


def latest_check_evaluation(instance: DagsterInstance, key: AssetCheckKey) -> tuple[Any, float] | None:
    """The newest evaluation of a check (passed or failed) and when it was planned; executions that were only
    planned (skipped, or this run's own) do not count. Waits for: a public status filter on check history."""
    done = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=1, status=done):
        evaluation = record.event.asset_check_evaluation if record.event is not None else None
        if evaluation is not None:
            return evaluation, record.create_timestamp
    return None
