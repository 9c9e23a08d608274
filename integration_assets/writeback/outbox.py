"""`ops.outbox`: planned writes waiting for their destination, with the idempotency keys they will be sent with.

A write lands here when its destination failed it with a 5xx or a timeout, or the destination's circuit is
open. Replays go in order per group (a customer before its invoices) and stop a group at its first failure,
so a later write never overtakes an earlier one. An item is `pending` until it is delivered (or its outcome is
final: rejected, conflict, blocked, superseded by a newer write of the same record: `cancelled`, with the
outcome kept); the status vocabulary is what monitoring/metrics.py counts as pending.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from integration_assets.core.redact import redact
from integration_assets.core.warehouse import Transaction, Warehouse
from integration_assets.writeback.model import DELIVERED, Outcome, PlannedWrite, Status

__all__ = [
    "COLUMNS",
    "TABLE",
    "OutboxItem",
    "cancel",
    "ensure_table",
    "finish",
    "pending",
    "pending_counts",
    "queue",
    "requeue",
]

TABLE = "ops.outbox"
COLUMNS = {
    "outbox_id": "TEXT NOT NULL",
    "flow": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "operation": "TEXT NOT NULL",
    "payload": "JSON",
    "idempotency_key": "TEXT NOT NULL",
    "group_key": "TEXT NOT NULL",
    "review_ref": "TEXT NOT NULL",
    "sequence": "INTEGER NOT NULL",
    "source_version": "TEXT",
    "destination_id": "TEXT",
    "status": "TEXT NOT NULL",  # pending | delivered | cancelled
    "outcome": "TEXT",  # the last delivery's Status (or superseded, not_planned)
    "attempts": "INTEGER NOT NULL",
    "last_error": "TEXT",
    "queued_at": "TIMESTAMPTZ NOT NULL",
    "next_attempt_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "run_id": "TEXT",
    # flow and idempotency key while the row is pending, NULL once it is finished: unique, so one write
    # never waits twice (both backends: a unique index allows any number of NULLs)
    "pending_key": "TEXT",
}
PENDING, DELIVERED_STATUS, CANCELLED = "pending", "delivered", "cancelled"
INDEX = "outbox_one_pending_per_key"


def ensure_table(warehouse: Warehouse) -> None:
    warehouse.ensure_table(TABLE, COLUMNS, primary_key=["outbox_id"])
    with warehouse.transaction() as tx:
        tx.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (pending_key)")


def _pending_key(write: PlannedWrite) -> str:
    return f"{write.flow}|{write.idempotency_key}"


class OutboxItem:
    """A pending row: the planned write and how often it was tried."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.outbox_id: str = row["outbox_id"]
        self.attempts: int = int(row["attempts"])
        self.write = PlannedWrite.from_row(row)


def pending(warehouse: Warehouse, flow: str) -> list[OutboxItem]:
    """The flow's waiting writes in delivery order: per group, by sequence, then by when they were queued."""
    frame = warehouse.frame(
        f"SELECT * FROM {TABLE} WHERE flow = ? AND status = ? ORDER BY group_key, sequence, queued_at, outbox_id",
        [flow, PENDING],
    )
    return [OutboxItem(row) for row in frame.to_dict("records")]


def pending_counts(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Per flow: how many writes wait and when the earliest is due again (for the replay sensor)."""
    rows = warehouse.query(
        f"SELECT flow, count(*), min(next_attempt_at), max(attempts) FROM {TABLE} WHERE status = ? GROUP BY flow",
        [PENDING],
    )
    return {flow: {"pending": int(n), "due_at": due, "attempts": int(tries or 0)} for flow, n, due, tries in rows}


def _retry_delay(attempts: int, base_s: float, cap_s: float) -> timedelta:
    return timedelta(seconds=min(cap_s, base_s * 2 ** max(attempts - 1, 0)))


def _error_text(outcome: Outcome) -> str | None:
    text = outcome.error.message if outcome.error else outcome.detail
    return redact(text) if text else None


def requeue(tx: Transaction, item: OutboxItem, outcome: Outcome, *, run_id: str, base_s: float, cap_s: float) -> None:
    """A replayed item that failed again (or waits behind its group): one more attempt, due after the back-off."""
    tried = outcome.error is not None
    attempts = item.attempts + (1 if tried else 0)
    tx.execute(
        f"UPDATE {TABLE} SET attempts = ?, last_error = ?, outcome = ?, next_attempt_at = ?, run_id = ? "
        "WHERE outbox_id = ?",
        [
            attempts,
            _error_text(outcome),
            str(outcome.status),
            datetime.now(UTC) + _retry_delay(max(attempts, 1), base_s, cap_s),
            run_id,
            item.outbox_id,
        ],
    )


def finish(tx: Transaction, item: OutboxItem, outcome: Outcome, *, run_id: str) -> None:
    """A replayed item whose outcome is final: delivered, or cancelled with the outcome kept (refused,
    conflict, blocked, skipped by the flow's behaviour, invalid)."""
    final = DELIVERED_STATUS if outcome.status in DELIVERED else CANCELLED
    tx.execute(
        f"UPDATE {TABLE} SET status = ?, outcome = ?, attempts = ?, last_error = ?, finished_at = ?, "
        "destination_id = coalesce(?, destination_id), run_id = ?, pending_key = NULL WHERE outbox_id = ?",
        [
            final,
            str(outcome.status),
            item.attempts + (1 if outcome.status not in (Status.SKIPPED, Status.INVALID) else 0),
            redact(outcome.error.message) if outcome.error else None,
            datetime.now(UTC),
            outcome.destination_id,
            run_id,
            item.outbox_id,
        ],
    )


def cancel(tx: Transaction, item: OutboxItem, why: str, *, run_id: str) -> None:
    """An item this run no longer delivers: `superseded` by a newer write of its record, or `not_planned`."""
    tx.execute(
        f"UPDATE {TABLE} SET status = ?, outcome = ?, finished_at = ?, run_id = ?, pending_key = NULL "
        "WHERE outbox_id = ?",
        [CANCELLED, why, datetime.now(UTC), run_id, item.outbox_id],
    )


def queue(tx: Transaction, outcome: Outcome, *, run_id: str, base_s: float, cap_s: float) -> bool:
    """A fresh write that could not be delivered waits with its idempotency key; False when a row with this
    key already waits (the write is never queued twice)."""
    write = outcome.write
    if tx.execute(f"SELECT 1 FROM {TABLE} WHERE pending_key = ?", [_pending_key(write)]):
        return False
    tried = outcome.error is not None  # straight to the outbox (circuit open, group waiting): not yet tried
    now = datetime.now(UTC)
    tx.append(
        TABLE,
        [
            {
                **write.row(),
                "outbox_id": uuid.uuid4().hex,
                "status": PENDING,
                "outcome": str(outcome.status),
                "attempts": 1 if tried else 0,
                "last_error": _error_text(outcome),
                "queued_at": now,
                # not before the back-off either way: a circuit opens because the destination is failing
                "next_attempt_at": now + _retry_delay(1, base_s, cap_s),
                "finished_at": None,
                "run_id": run_id,
                "pending_key": _pending_key(write),
            }
        ],
    )
    return True
