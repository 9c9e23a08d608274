"""An alert when a run has waited for a vendor's concurrency pool longer than `pools.blocked_alert_minutes`.

Every vendor is a concurrency pool of one slot (dagster.yaml, `concurrency.pools.default_limit`). A run whose
process dies while one of its steps holds the slot keeps it until something frees it: with the daemon, run
monitoring marks the run failed and frees its slots (`run_monitoring` in dagster.yaml); without one (a killed
`dagster job execute`), nothing does, and every later run of that vendor waits in silence. This sensor makes
the wait loud: one alert per pool (`pool:<name>`), naming the pool, the runs waiting and the run(s) holding
its slots, through the same `ops.alerts` episodes and sinks as every other alert. It resolves once nothing
has waited past the limit any more.

A run waits for a pool in one of two ways, and both count:

- a step of a started run is queued for a slot (a pending step of the pool): it waits since it was queued;
- a queued run is held back by the run queue because the pools its first steps need are full (op granularity:
  all of them; run granularity: any): it waits since it was queued. A run queued for another reason (the run
  limit) is not counted while its pools have room.

Severity: WARNING while every run holding the pool is still in progress (a long run may just be long), CRITICAL
when a holder is finished or unknown to the instance: that slot is lost until the daemon (after
`free_slots_after_run_end_seconds`) or a person frees it (README, "Runs that die"). A WARNING that turns
CRITICAL is announced once more (`escalated`).

Reads the instance's concurrency tables through `core/dagster_adapter.read_pool_snapshot` (what the UI's
concurrency page reads; Dagster 1.13 has no public `DagsterInstance` method for them). A tick that finds no
pool over its limit, no alert of its own open and no notice waiting does not open the warehouse. A tick that
opens, escalates or resolves an alert reports the `ops/alerts` asset, as the other alert sensors do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRecord,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from integration_assets.core.dagster_adapter import (
    instance_identity,
    read_pool_snapshot,
    run_pool_needs,
)
from integration_assets.core.monitoring_config import Owners, check_roles, load_monitoring
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import ALERTS_TABLE, Observation, apply_observations, ensure_alerts_table
from integration_assets.monitoring.sensors import ROLES, alert_sensor, tick_outcome
from integration_assets.monitoring.sinks import configured_sinks, deliver_pending
from integration_assets.systems import CATALOG

__all__ = [
    "FAMILY",
    "PoolState",
    "RunRef",
    "blocked_pool_alerts",
    "pool_observations",
    "problem_key_for_pool",
    "read_pools",
]

FAMILY = "pools"
IN_PROGRESS = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
}
QUEUED_RUNS = 1000  # queued runs read per tick, the oldest (longest waiting) first
ROLE_OF_POOL = {system.vendor: system.role for system in CATALOG.systems}  # the pools are the vendors


def problem_key_for_pool(pool: str) -> str:
    return f"pool:{pool}"


@dataclass(frozen=True)
class RunRef:
    """A run holding or waiting for a pool: which step (None for a queued run), its job and status."""

    run_id: str
    step_key: str | None
    job: str
    status: str  # the run's status, or "UNKNOWN" when the instance no longer has the run
    since: datetime | None = None  # a waiting run: since when it waits

    @property
    def finished(self) -> bool:
        return self.status not in {status.value for status in IN_PROGRESS}

    def describe(self) -> str:
        step = f", step {self.step_key}" if self.step_key else ""
        return f"run {self.run_id} ({self.job}, {self.status}{step})"

    def evidence(self, now: datetime) -> dict[str, object]:
        data: dict[str, object] = {"run_id": self.run_id, "job": self.job, "status": self.status}
        if self.step_key:
            data["step"] = self.step_key
        if self.since is not None:
            data["waiting_minutes"] = round((now - self.since).total_seconds() / 60, 1)
        return data


@dataclass(frozen=True)
class PoolState:
    """One pool: its limit, the runs holding its slots and the runs waiting for one."""

    pool: str
    limit: int | None
    holders: list[RunRef] = field(default_factory=list)
    waiting: list[RunRef] = field(default_factory=list)

    def overdue(self, now: datetime, limit_seconds: float) -> list[RunRef]:
        """The waiting runs (one entry per run, its longest wait) that have waited longer than the limit."""
        longest: dict[str, RunRef] = {}
        for ref in sorted((ref for ref in self.waiting if ref.since is not None), key=lambda ref: ref.since or now):
            longest.setdefault(ref.run_id, ref)  # oldest first: a run's first entry is its longest wait
        return [ref for ref in longest.values() if (now - (ref.since or now)).total_seconds() > limit_seconds]


def _records(instance: DagsterInstance, run_ids: Iterable[str]) -> dict[str, RunRecord]:
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    return {r.dagster_run.run_id: r for r in instance.get_run_records(filters=RunsFilter(run_ids=ids))}


def _ref(run_id: str, step_key: str | None, records: Mapping[str, RunRecord], since: datetime | None = None):
    record = records.get(run_id)
    if record is None:
        return RunRef(run_id, step_key, "unknown job", "UNKNOWN", since)
    return RunRef(run_id, step_key, record.dagster_run.job_name, record.dagster_run.status.value, since)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def read_pools(instance: DagsterInstance) -> list[PoolState]:
    """Every pool the instance knows, with who holds its slots and who waits for one."""
    snapshot = read_pool_snapshot(instance)
    if snapshot is None:
        return []
    infos, granularity = snapshot.infos, snapshot.granularity  # granularity: `op` (default) or `run`
    queued_filter = RunsFilter(statuses=[DagsterRunStatus.QUEUED])
    queued = list(instance.get_run_records(filters=queued_filter, limit=QUEUED_RUNS, ascending=True))
    involved = {slot.run_id for info in infos.values() for slot in info.claimed_slots}
    involved |= {step.run_id for info in infos.values() for step in info.pending_steps}
    records = _records(instance, involved)
    records.update({record.dagster_run.run_id: record for record in queued})

    def full(pool: str) -> bool:
        info = infos.get(pool)
        if info is None or info.limit is None:
            return False  # a pool without a limit never blocks
        assigned = [step for step in info.pending_steps if step.assigned_timestamp is not None]
        unassigned = [step for step in info.pending_steps if step.assigned_timestamp is None]
        return bool(unassigned) or max(len(info.claimed_slots), len(assigned)) >= info.limit

    queued_waits: dict[str, list[RunRef]] = {pool: [] for pool in infos}
    for record in queued:
        needs = run_pool_needs(record.dagster_run)
        if needs is None:
            continue
        if granularity == "run":
            blocking = [pool for pool in sorted(needs.all_pools) if full(pool)]
        elif needs.unconstrained_roots or not needs.root_pools:
            blocking = []  # a first step needs no pool: the queue does not hold the run back for one
        else:
            roots = sorted(needs.root_pools)
            blocking = roots if all(full(pool) for pool in roots) else []
        for pool in blocking:
            if pool in queued_waits:
                queued_waits[pool].append(
                    _ref(record.dagster_run.run_id, None, records, _aware(record.create_timestamp))
                )

    states = []
    for pool, info in sorted(infos.items()):
        holders = [_ref(slot.run_id, slot.step_key, records) for slot in info.claimed_slots]
        waiting = [
            _ref(step.run_id, step.step_key, records, _aware(step.enqueued_timestamp))
            for step in info.pending_steps
            if step.assigned_timestamp is None
        ]
        states.append(PoolState(pool, info.limit, holders, waiting + queued_waits[pool]))
    return states


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}".rstrip("0").rstrip(".")


def pool_observations(
    states: Sequence[PoolState],
    now: datetime,
    limit_seconds: float,
    owners: Owners,
    event_id: int,
    source: str,
) -> list[Observation]:
    """One observation per pool: failing when a run has waited for it longer than the limit."""
    observations = []
    for state in states:
        role = ROLE_OF_POOL.get(state.pool)
        late = state.overdue(now, limit_seconds)
        base = dict(
            problem_key=problem_key_for_pool(state.pool),
            kind="run",
            family=FAMILY,
            event_id=event_id,
            at=now,
            source=source,
            system=role,
            owner=owners.of(role),
        )
        if not late:
            observations.append(Observation(failing=False, run_id=None, **base))
            continue
        waited = max((now - (ref.since or now)).total_seconds() for ref in late)
        holders = state.holders
        lost = [ref for ref in holders if ref.finished]
        held = "; ".join(ref.describe() for ref in holders) if holders else "no run (is its limit 0?)"
        waiting = "; ".join(ref.describe() for ref in late)
        slots = f"{len(holders)} of {state.limit if state.limit is not None else '?'} slot(s)"
        summary = (
            f"Pool {state.pool}: {len(late)} run(s) waiting for a slot for up to {_minutes(waited)} min "
            f"(limit {_minutes(limit_seconds)} min): {waiting}. Its {slots} held by {held}."
        )
        free = " ".join(ref.run_id for ref in lost) or "<run id>"
        next_action = (
            f"Open Deployment → Concurrency → {state.pool} in the Dagster UI. A holder that is finished "
            f"(FAILURE, CANCELED) or whose process is gone keeps its slot until freed: free it with "
            f"`integration-free-slots {free}` (or the UI's slot list); then check that dagster-daemon runs with "
            "run_monitoring on, which frees such slots by itself. A holder that is alive and slow: wait, or "
            "terminate it from the UI."
        )
        observations.append(
            Observation(
                failing=True,
                run_id=late[0].run_id,
                severity="CRITICAL" if lost or not holders else "WARNING",
                job=", ".join(sorted({ref.job for ref in late})),
                summary=summary,
                evidence={
                    "pool": state.pool,
                    "limit": state.limit,
                    "held_by": [ref.evidence(now) for ref in holders],
                    "waiting": [ref.evidence(now) for ref in late],
                    "counts": {
                        "waiting_runs": len(late),
                        "held_slots": len(holders),
                        "finished_holders": len(lost),
                        "longest_wait_minutes": round(waited / 60, 1),
                    },
                    "sample_ids": [ref.run_id for ref in holders],
                },
                next_action=next_action,
                **base,
            )
        )
    return observations


@dataclass(frozen=True)
class PoolCursor:
    """The pools whose alert this sensor left open, and whether a notice of its own still waits for a sink."""

    open: tuple[str, ...] = ()
    pending: bool = False

    @classmethod
    def parse(cls, text: str | None) -> PoolCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(tuple(data.get("open", ())), bool(data.get("pending", False)))

    def dump(self) -> str:
        return json.dumps({"open": sorted(self.open), "pending": self.pending})


def _open_in_table(store: Warehouse) -> set[str]:
    """Problem keys of this family still open in `ops.alerts` (a tick that crashed may have left one)."""
    rows = store.query(f"SELECT problem_key FROM {ALERTS_TABLE} WHERE family = ? AND status = 'open'", [FAMILY])
    return {row[0] for row in rows}


def _cleared(problem_key: str, event_id: int, now: datetime, source: str) -> Observation:
    return Observation(problem_key, "run", FAMILY, False, event_id, now, None, source)


def _tick(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    cursor = PoolCursor.parse(context.cursor)
    config = check_roles(load_monitoring(), ROLES)
    limit_seconds = config.pools.blocked_alert_minutes * 60
    now = datetime.now(UTC)
    source = f"{instance_identity(context.instance)}#pool-clock"  # event ids are this clock's milliseconds
    states = read_pools(context.instance)
    event_id = int(now.timestamp() * 1000)
    observations = pool_observations(states, now, limit_seconds, config.owners, event_id, source)
    failing = [o for o in observations if o.failing]
    if not failing and not cursor.open and not cursor.pending:
        context.update_cursor(PoolCursor().dump())
        return SkipReason(f"no run waited for a pool longer than {_minutes(limit_seconds)} min; no alert open")
    sinks = configured_sinks(config)
    store = warehouse.open()
    ensure_alerts_table(store)
    was_open = set(cursor.open) | _open_in_table(store)
    known = {o.problem_key for o in observations}
    # an open alert of a pool the instance no longer has: nothing waits for it any more
    gone = [_cleared(key, event_id, now, source) for key in sorted(was_open - known)]
    relevant = failing + [o for o in observations if not o.failing and o.problem_key in was_open] + gone
    applied = apply_observations(store, relevant, [sink.name for sink in sinks])
    delivered = deliver_pending(
        store,
        sinks,
        config.alerts.delivery_attempts,
        config.alerts.delivery_timeout_seconds,
        families=[FAMILY],
        deadline_seconds=config.alerts.delivery_deadline_seconds,
    )
    still_open = tuple(sorted(o.problem_key for o in failing))
    message = (
        f"{len(failing)} pool(s) with a run waiting longer than {_minutes(limit_seconds)} min; "
        f"{len(applied.opened)} opened, {len(applied.escalated)} escalated, {len(applied.resolved)} resolved; "
        f"{delivered.sent} notices sent, {delivered.still_pending} waiting"
    )
    cursor_text = PoolCursor(still_open, delivered.still_pending > 0).dump()
    return tick_outcome(context, store, applied, delivered, message, cursor_text)


def blocked_pool_alert_sensor(name: str = "blocked_pool_alerts") -> SensorDefinition:
    return alert_sensor(
        name,
        "Alerts once when a run has waited for a vendor's concurrency pool longer than "
        "pools.blocked_alert_minutes (monitoring.yaml), naming the pool and the run(s) holding it; a recovery "
        "notice when nothing waits past the limit any more.",
        _tick,
    )


blocked_pool_alerts = blocked_pool_alert_sensor()
