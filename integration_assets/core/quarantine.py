"""Record-level quarantine: a record that cannot be stored goes to the review queue, never the whole chunk.

One NUL character in one contact used to refuse its whole chunk and the cursor, fail the step on a deterministic
error that was retried anyway, and skip every canonical asset on every run until someone edited the record at
the vendor. Now the sync screens each chunk (`warehouse.rows.screen`), and this module writes what it set aside,
in the same transaction as the rest of the chunk and its cursor, so a committed cursor never runs ahead of a
record that is neither stored nor queued:

- `ops.review_queue` gets one item per (system, object type, record id, reason code), `found_by` the stream's
  asset key (`crm/contacts`), with a next action. The queue's table is declared here, in core, because the
  sync writes it and core may not import canonical; `canonical/review.py` reads and writes the same declaration.
- `ops.quarantine` keeps, per (stream, record id), the latest raw content that was refused: escaped JSON (NUL
  and every control character as `\\u` escapes, ASCII only) capped at `RAW_KEEP_CHARS`, for a person to inspect.

When a storable version of the record arrives (fixed at the vendor, or deleted there), its item resolves itself
and its raw copy goes: the raw table holds the record again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.warehouse import RawRow, Transaction, Warehouse
from integration_assets.core.warehouse.rows import (
    MALFORMED_RECORD,
    MAX_PAYLOAD_BYTES,
    PAYLOAD_TOO_LARGE,
    QUARANTINE_REASONS,
    REFUSED_BY_DATABASE,
    UNSTORABLE_PAYLOAD,
    Rejected,
)

__all__ = [
    "NEXT_ACTIONS",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_REASONS",
    "QUARANTINE_TABLE",
    "REVIEW_COLUMNS",
    "REVIEW_KEY",
    "REVIEW_TABLE",
    "ensure_tables",
    "open_items",
    "quarantined_ids",
    "quarantined_versions",
    "record",
    "resolve",
]

REVIEW_TABLE = "ops.review_queue"
REVIEW_COLUMNS: dict[str, str] = {
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "reason_code": "TEXT NOT NULL",
    "detail": "TEXT",
    "severity": "TEXT",
    "next_action": "TEXT",
    "status": "TEXT NOT NULL",
    "resolution": "TEXT",
    "first_seen": "TIMESTAMPTZ",
    "last_seen": "TIMESTAMPTZ",
    "occurrences": "INTEGER",
    "found_by": "TEXT",
    "run_id": "TEXT",
}
REVIEW_KEY = ("system", "object_type", "record_id", "reason_code")

QUARANTINE_TABLE = "ops.quarantine"
QUARANTINE_COLUMNS: dict[str, str] = {
    "stream": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "version": "BIGINT",
    "reason_code": "TEXT NOT NULL",
    "detail": "TEXT",
    "raw": "TEXT",  # escaped JSON, ASCII only, at most RAW_KEEP_CHARS
    "raw_bytes": "BIGINT",  # the size of the full escaped content
    "raw_truncated": "BOOLEAN",
    "first_seen": "TIMESTAMPTZ",
    "last_seen": "TIMESTAMPTZ",
    "occurrences": "INTEGER",
    "run_id": "TEXT",
}

NEXT_ACTIONS = {
    UNSTORABLE_PAYLOAD: "correct {what} at the vendor (it holds a NUL or another character no database stores); "
    "its raw content is in ops.quarantine; the next sync stores the corrected record and resolves this item",
    PAYLOAD_TOO_LARGE: f"shrink {{what}} at the vendor (over {MAX_PAYLOAD_BYTES:,} bytes of JSON); its first bytes "
    "are in ops.quarantine; the next sync stores the corrected record and resolves this item",
    REFUSED_BY_DATABASE: "look at {what} in ops.quarantine (detail: the database's error) and correct it at the "
    "vendor; if the value is legitimate, report it: the warehouse should store it",
    MALFORMED_RECORD: "look at {what} in ops.quarantine: the vendor sent a record the connector cannot read "
    "(no id, or a malformed nested object); correct it at the vendor, or report a change of the vendor's API",
}


def ensure_tables(warehouse: Warehouse) -> None:
    warehouse.ensure_table(REVIEW_TABLE, REVIEW_COLUMNS, primary_key=list(REVIEW_KEY))
    warehouse.ensure_table(QUARANTINE_TABLE, QUARANTINE_COLUMNS, primary_key=["stream", "record_id"])


def quarantined_versions(warehouse: Warehouse, stream: StreamSpec) -> dict[str, int]:
    """The stream's records in quarantine now (id → the refused version): few, read once per sync, so each
    chunk can tell whether it brings a storable version of one of them."""
    rows = warehouse.query(f"SELECT record_id, version FROM {QUARANTINE_TABLE} WHERE stream = ?", [stream.key])
    return {str(record_id): int(version or 0) for record_id, version in rows}


def quarantined_ids(warehouse: Warehouse, stream: StreamSpec) -> set[str]:
    """The ids of the stream's records in quarantine now (live at the vendor, yet not stored by the sync):
    what the completeness check takes off its count of missing records."""
    ensure_tables(warehouse)
    return set(quarantined_versions(warehouse, stream))


def _what(stream: StreamSpec, record_id: str) -> str:
    return f"{stream.object_type} {record_id} of {stream.key}"


def record(tx: Transaction, stream: StreamSpec, rejected: Sequence[Rejected], run_id: str) -> None:
    """Queues each rejected record (one review item per reason) and keeps its escaped raw content, counting
    another occurrence of what was already there; an item a person ignored stays ignored."""
    if not rejected:
        return
    now = datetime.now(UTC)
    latest = {item.id: item for item in rejected}  # one per id: the last in the chunk
    for item in latest.values():
        key = [stream.role, stream.object_type, item.id, item.reason_code]
        before = tx.execute(
            f"SELECT status, first_seen, occurrences FROM {REVIEW_TABLE} "
            "WHERE system = ? AND object_type = ? AND record_id = ? AND reason_code = ?",
            key,
        )
        status, first_seen, occurrences = before[0] if before else ("open", now, 0)
        tx.execute(  # refused again for another reason: the item of the old reason is over
            f"UPDATE {REVIEW_TABLE} SET status = 'resolved', resolution = ?, run_id = ? "
            "WHERE found_by = ? AND record_id = ? AND reason_code <> ? AND status = 'open'",
            [f"quarantined again, now as {item.reason_code}", run_id, stream.key, item.id, item.reason_code],
        )
        tx.execute(
            f"DELETE FROM {REVIEW_TABLE} WHERE system = ? AND object_type = ? AND record_id = ? AND reason_code = ?",
            key,
        )
        kept = tx.execute(
            f"SELECT first_seen, occurrences FROM {QUARANTINE_TABLE} WHERE stream = ? AND record_id = ?",
            [stream.key, item.id],
        )
        tx.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE stream = ? AND record_id = ?", [stream.key, item.id])
        tx.append(
            REVIEW_TABLE,
            [
                {
                    "system": stream.role,
                    "object_type": stream.object_type,
                    "record_id": item.id,
                    "reason_code": item.reason_code,
                    "detail": f"not stored in {stream.raw_table}: {item.detail}",
                    "severity": "ERROR",
                    "next_action": NEXT_ACTIONS[item.reason_code].format(what=_what(stream, item.id)),
                    "status": "ignored" if status == "ignored" else "open",
                    "resolution": None,
                    "first_seen": first_seen if status != "resolved" else now,
                    "last_seen": now,
                    "occurrences": int(occurrences or 0) + 1,
                    "found_by": stream.key,
                    "run_id": run_id,
                }
            ],
        )
        tx.append(
            QUARANTINE_TABLE,
            [
                {
                    "stream": stream.key,
                    "record_id": item.id,
                    "version": item.version,
                    "reason_code": item.reason_code,
                    "detail": item.detail,
                    "raw": item.raw,
                    "raw_bytes": item.raw_bytes,
                    "raw_truncated": item.truncated,
                    "first_seen": kept[0][0] if kept else now,
                    "last_seen": now,
                    "occurrences": int(kept[0][1] or 0) + 1 if kept else 1,
                    "run_id": run_id,
                }
            ],
        )


def resolve(
    tx: Transaction, stream: StreamSpec, stored: Iterable[RawRow], quarantined: dict[str, int], run_id: str
) -> set[str]:
    """Resolves the items of records this chunk stored at a version not older than the one refused (fixed or
    deleted at the vendor) and drops their raw copies; returns their ids and forgets them in `quarantined`."""
    fixed = {row.id for row in stored if row.id in quarantined and row.version >= quarantined[row.id]}
    for record_id in sorted(fixed):
        tx.execute(
            f"UPDATE {REVIEW_TABLE} SET status = 'resolved', resolution = ?, run_id = ?, last_seen = ? "
            "WHERE found_by = ? AND record_id = ? AND status IN ('open', 'ignored')",
            ["a storable version of the record arrived", run_id, datetime.now(UTC), stream.key, record_id],
        )
        tx.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE stream = ? AND record_id = ?", [stream.key, record_id])
        del quarantined[record_id]
    return fixed


def open_items(warehouse: Warehouse, stream: StreamSpec) -> list[dict[str, Any]]:
    """The stream's quarantined records whose review item is open: what its contract check reports."""
    ensure_tables(warehouse)
    return warehouse.records(
        f"SELECT q.record_id, q.reason_code, q.detail, q.raw_bytes, q.last_seen FROM {QUARANTINE_TABLE} q "
        f"JOIN {REVIEW_TABLE} r ON r.found_by = q.stream AND r.record_id = q.record_id "
        "AND r.reason_code = q.reason_code WHERE q.stream = ? AND r.status = 'open' ORDER BY q.record_id",
        [stream.key],
    )
