"""`ops.sync_log`: one row per delivered, refused, queued or failed write, as reverse-ETL tools keep it.

Keyed by flow and source record, with the destination's id, the idempotency key, the error and its next
action, so "what happened to deal 123's invoice?" is one query. A dry run writes no rows.

A create the vendor answered as an idempotent replay (Stripe's `Idempotent-Replayed: true` to another run's
request with the same key, as when two runs deliver the same plan at once) made nothing: it is logged with
status `idempotent_replay`, so "created" counts each destination record once. The `replayed` column is
another thing: the write came from the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from integration_assets.core.redact import redact
from integration_assets.core.warehouse import Transaction, Warehouse
from integration_assets.writeback.model import Outcome, Status

__all__ = [
    "COLUMNS",
    "IDEMPOTENT_REPLAY",
    "TABLE",
    "append_outcomes",
    "destination_ids",
    "ensure_table",
    "last_values",
    "last_written",
    "rows_of",
]

TABLE = "ops.sync_log"
COLUMNS = {
    "logged_at": "TIMESTAMPTZ NOT NULL",
    "run_id": "TEXT",
    "flow": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "operation": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "destination_id": "TEXT",
    "destination_version": "TEXT",
    "idempotency_key": "TEXT",
    "error_category": "TEXT",
    "error": "TEXT",
    "next_action": "TEXT",
    "detail": "TEXT",
    "attempt": "INTEGER",
    "replayed": "BOOLEAN",
    "written_values": "JSON",  # the flow's fields as the destination holds them after a delivered write
}
IDEMPOTENT_REPLAY = "idempotent_replay"  # a create the vendor answered from another request's stored answer
# what the destination holds after the write: a replay points at the record the first request made
DELIVERED = ("created", "updated", "unchanged", IDEMPOTENT_REPLAY)


def ensure_table(warehouse: Warehouse) -> None:
    warehouse.ensure_table(TABLE, COLUMNS)


def logged_status(outcome: Outcome, idempotent_replays: Collection[str] = ()) -> str:
    """The status the log keeps: a delivered create whose key the vendor replayed is `idempotent_replay`."""
    if outcome.status == Status.CREATED and outcome.write.idempotency_key in idempotent_replays:
        return IDEMPOTENT_REPLAY
    return str(outcome.status)


def rows_of(
    outcomes: Sequence[Outcome], run_id: str, *, idempotent_replays: Collection[str] = ()
) -> list[dict[str, Any]]:
    """`idempotent_replays`: the idempotency keys of the writes that the vendor answered as replays."""
    now = datetime.now(UTC)
    return [
        {
            "logged_at": now,
            "run_id": run_id,
            "flow": o.write.flow,
            "system": o.write.system,
            "object_type": o.write.object_type,
            "record_id": o.write.record_id,
            "operation": o.write.operation,
            "status": logged_status(o, idempotent_replays),
            "destination_id": o.destination_id or o.write.destination_id,
            "destination_version": o.destination_version,
            "idempotency_key": o.write.idempotency_key,
            "error_category": str(o.error.category) if o.error else None,
            "error": redact(o.error.message) if o.error else None,
            "next_action": redact(o.next_action) if o.next_action else None,
            "detail": redact(o.detail) if o.detail else None,
            "attempt": o.attempt,
            "replayed": o.replayed,
            "written_values": o.values,
        }
        for o in outcomes
    ]


def append_outcomes(
    tx: Transaction, outcomes: Sequence[Outcome], run_id: str, *, idempotent_replays: Collection[str] = ()
) -> int:
    return tx.append(TABLE, rows_of(outcomes, run_id, idempotent_replays=idempotent_replays)) if outcomes else 0


def last_written(warehouse: Warehouse, flow: str) -> dict[str, str]:
    """Per destination record, the version it had right after this flow's latest delivery (a write, or a re-read
    that found our values there, e.g. after a lost response): a target stamp equal to it is our own write, not
    someone else's newer edit."""
    rows = warehouse.query(
        f"SELECT destination_id, destination_version FROM {TABLE} WHERE flow = ? AND status IN {DELIVERED} "
        "AND destination_version IS NOT NULL ORDER BY logged_at",
        [flow],
    )
    return {str(destination_id): str(version) for destination_id, version in rows}


def last_values(warehouse: Warehouse, flow: str) -> dict[str, dict[str, Any]]:
    """Per destination record, the flow's fields as the destination held them after this flow's latest
    delivery: a field still holding that value was left by us, and is ours to update."""
    rows = warehouse.query(
        f"SELECT destination_id, written_values FROM {TABLE} WHERE flow = ? AND status IN {DELIVERED} "
        "AND written_values IS NOT NULL ORDER BY logged_at",
        [flow],
    )
    found: dict[str, dict[str, Any]] = {}
    for destination_id, values in rows:
        parsed = json.loads(values) if isinstance(values, str) else values
        if isinstance(parsed, dict):
            found[str(destination_id)] = parsed
    return found


def destination_ids(warehouse: Warehouse, flow: str, object_type: str) -> dict[str, str]:
    """Source record → the destination record this flow created or found for it (latest first wins)."""
    rows = warehouse.query(
        f"SELECT record_id, destination_id FROM {TABLE} WHERE flow = ? AND object_type = ? AND status IN "
        f"('created', 'unchanged', '{IDEMPOTENT_REPLAY}') AND destination_id IS NOT NULL ORDER BY logged_at",
        [flow, object_type],
    )
    return {str(record_id): str(destination_id) for record_id, destination_id in rows}
