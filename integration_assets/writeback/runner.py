"""Delivering a flow's planned writes: outbox first, then this run's plan, each write exactly once.

The order of a run: the plan first (what the source asks for now); then the outbox against it: a waiting
item the plan repeats (same idempotency key) is delivered as that planned write, an item the plan replaces
with a newer write of its record, or no longer asks for, is cancelled and never replayed. Then the plan in
order per group, each write checked against the flow's behaviour and its payload contract (replays too),
then delivered unless its destination's circuit is open or an earlier write of its group waits. A vendor's
refusal goes to the review queue and the batch goes on; a 5xx or timeout queues the write; a write outside
the flow's access grant is blocked before it is sent; any other error fails that write only. Each outcome
is settled (sync log and outbox, one small transaction) as soon as it is known, so a crash later in the run
loses nothing already applied; then the review queue is brought up to date. A dry run reads and decides,
and records nothing.

A create whose every keyed write the vendor answered as a replay of another run's request (two runs
delivering the same plan at once) made nothing: the sync log says `idempotent_replay`, not a second
"created". Not so for a write from the outbox: its earlier attempt, whose outcome was never logged, made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandera.pandas as pa

from integration_assets.core.errors import Category, IntegrationError, Resource
from integration_assets.core.redact import redact
from integration_assets.core.replays import Replays, watching_replays
from integration_assets.core.warehouse import Warehouse
from integration_assets.writeback import outbox, sync_log
from integration_assets.writeback.breaker import CircuitBreaker
from integration_assets.writeback.config import FlowSettings, WritebackConfig
from integration_assets.writeback.contracts import violations
from integration_assets.writeback.model import Outcome, PlannedWrite, Status
from integration_assets.writeback.review import sync_review

__all__ = ["Flow", "FlowRun", "run_flow"]

STATUS_OF_ERROR = {
    Category.PERMISSION_DENIED: Status.BLOCKED,
    Category.REJECTED_VALUE: Status.REJECTED,
    Category.TRANSIENT: Status.QUEUED,
    Category.RATE_LIMITED: Status.QUEUED,
    Category.CONFLICT: Status.CONFLICT,
}


class Flow(Protocol):
    """One write-back flow: what it plans from the warehouse, and how it delivers a write to its vendor."""

    name: str
    system: str  # the destination's role

    def prepare(self, warehouse: Warehouse) -> None:
        """Reads what the flow needs from earlier runs (e.g. the versions its own writes left behind)."""
        ...

    def plan(self, warehouse: Warehouse) -> list[PlannedWrite]: ...

    def contract(self, object_type: str) -> pa.DataFrameSchema: ...

    def deliver(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        """Re-reads the destination, decides again and writes; raises IntegrationError when the vendor fails."""
        ...


@dataclass
class FlowRun:
    """What one run of a flow did, for the asset's metadata."""

    flow: str
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    circuit_opened: bool = False
    pending_after: int = 0
    idempotent_replays: set[str] = field(default_factory=set)  # keys of creates the vendor answered as replays

    def counts(self) -> dict[str, int]:
        """Outcomes per status as the sync log keeps them: a create the vendor replayed is not a creation."""
        counts = {str(s): 0 for s in Status} | {sync_log.IDEMPOTENT_REPLAY: 0}
        for o in self.outcomes:
            counts[sync_log.logged_status(o, self.idempotent_replays)] += 1
        return counts


def _attempt(flow: Flow, write: PlannedWrite, breaker: CircuitBreaker, *, dry_run: bool) -> tuple[Outcome, Replays]:
    """The write's outcome, and which of its keyed writes the vendor answered as replays of another request."""
    with watching_replays() as replays:
        return _deliver(flow, write, breaker, dry_run=dry_run), replays


def _deliver(flow: Flow, write: PlannedWrite, breaker: CircuitBreaker, *, dry_run: bool) -> Outcome:
    try:
        outcome = flow.deliver(write, dry_run=dry_run)
    except IntegrationError as error:
        breaker.record_failure(flow.system, error)
        return Outcome(write, STATUS_OF_ERROR.get(error.category, Status.FAILED), detail=error.message, error=error)
    except Exception as exc:  # a vendor body without a field, a value that does not parse: this write fails
        error = IntegrationError(
            Category.UNKNOWN,
            redact(f"{type(exc).__name__}: {exc}"),
            Resource(flow.system, object_type=write.object_type, record_id=write.record_id),
            f"a bug or an unexpected answer from {flow.system}: read the error, fix the flow or the data, and run "
            "the flow again (it looks up what it already made before writing)",
        )
        return Outcome(write, Status.FAILED, detail=error.message, error=error)
    breaker.record_success(flow.system)
    return outcome


def _checked(flow: Flow, writes: Sequence[PlannedWrite]) -> dict[str, str]:
    """Idempotency key → what the payload broke, for writes that break their contract."""
    broken: dict[str, str] = {}
    for object_type in dict.fromkeys(w.object_type for w in writes):
        same = [w for w in writes if w.object_type == object_type]
        for position, problems in violations(same, flow.contract(object_type)).items():
            broken[same[position].idempotency_key] = "; ".join(problems)
    return broken


@dataclass
class _Ledger:
    """Settles each outcome as soon as it is known, in its own small transaction: the sync log row and the
    outbox row together, so a crash or a kill later in the run loses nothing already applied."""

    warehouse: Warehouse
    run_id: str
    base_s: float
    cap_s: float

    def record(self, outcome: Outcome, item: outbox.OutboxItem | None, replays: set[str]) -> None:
        with self.warehouse.transaction() as tx:
            sync_log.append_outcomes(tx, [outcome], self.run_id, idempotent_replays=replays)
            if item is None:
                if outcome.status == Status.QUEUED and not outbox.queue(
                    tx, outcome, run_id=self.run_id, base_s=self.base_s, cap_s=self.cap_s
                ):
                    outcome.detail = f"already waiting in the outbox ({outcome.detail})"
            elif outcome.status == Status.QUEUED:
                outbox.requeue(tx, item, outcome, run_id=self.run_id, base_s=self.base_s, cap_s=self.cap_s)
            else:
                outbox.finish(tx, item, outcome, run_id=self.run_id)

    def cancel(self, item: outbox.OutboxItem, why: str) -> None:
        with self.warehouse.transaction() as tx:
            outbox.cancel(tx, item, why, run_id=self.run_id)


def run_flow(
    flow: Flow, warehouse: Warehouse, settings: FlowSettings, config: WritebackConfig, *, run_id: str, dry_run: bool
) -> FlowRun:
    for ensure in (sync_log.ensure_table, outbox.ensure_table):
        ensure(warehouse)
    run = FlowRun(flow.name, dry_run)
    flow.prepare(warehouse)
    breaker = CircuitBreaker(config.circuit_breaker.failures_to_open)
    ledger = _Ledger(warehouse, run_id, config.outbox.retry_base_seconds, config.outbox.retry_cap_seconds)

    # 1. this run's plan, first: what the source asks for now
    plan = sorted(flow.plan(warehouse), key=lambda w: (w.group, w.sequence))
    broken = _checked(flow, plan)

    # 2. the outbox against the plan: an item the plan repeats (same key) is delivered as that write, once; an
    # item the plan replaces (a newer write of its record) or no longer asks for is cancelled, never replayed
    waiting: dict[str, outbox.OutboxItem] = {}
    if not dry_run:
        planned = {(w.record_id, w.object_type): w.idempotency_key for w in plan}
        for item in outbox.pending(warehouse, flow.name):
            write = item.write
            key = planned.get((write.record_id, write.object_type))
            if key == write.idempotency_key and key not in waiting:
                waiting[key] = item
            else:
                ledger.cancel(item, "superseded" if key is not None else "not_planned")

    # 3. delivery, in order per group; each outcome settled as soon as it is known
    waiting_groups: set[str] = set()
    for write in plan:
        item = waiting.get(write.idempotency_key)
        replays = Replays()
        if not settings.behaviour.allows(write.operation):
            why = f"behaviour {settings.behaviour} does not {write.operation}"
            outcome = Outcome(write, Status.SKIPPED, detail=why)
        elif write.idempotency_key in broken:
            why = f"payload breaks its contract: {broken[write.idempotency_key]}"
            outcome = Outcome(write, Status.INVALID, detail=why)
        elif dry_run:
            outcome, _ = _attempt(flow, write, breaker, dry_run=True)
        elif write.group in waiting_groups or breaker.is_open(flow.system):
            why = "circuit open" if breaker.is_open(flow.system) else "an earlier write of its group waits"
            outcome = Outcome(write, Status.QUEUED, detail=f"{why}: waiting in the outbox")
        else:
            outcome, replays = _attempt(flow, write, breaker, dry_run=False)
        if outcome.status == Status.CREATED and replays.only_replays and item is None:
            run.idempotent_replays.add(write.idempotency_key)
            outcome.detail = (
                f"{outcome.detail}; the vendor replayed the answer to an earlier request with this idempotency key "
                "(another run's): nothing new was made"
            )
        if item is not None:
            outcome.attempt, outcome.replayed = item.attempts + 1, True
            if outcome.status == Status.QUEUED:
                outcome.detail = f"already waiting in the outbox ({outcome.detail})"
        if outcome.status == Status.QUEUED:
            waiting_groups.add(write.group)
        if not dry_run:
            ledger.record(outcome, item, run.idempotent_replays)
        run.outcomes.append(outcome)
    run.circuit_opened = breaker.is_open(flow.system)
    if not dry_run:
        sync_review(warehouse, flow.name, run.outcomes, run_id)
    run.pending_after = len(outbox.pending(warehouse, flow.name))
    return run
