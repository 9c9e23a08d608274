"""The planned write and its outcome: what every flow, the outbox and the sync log speak.

A planned write is an intent (create this invoice for that deal, set that plan on this organization), not an
HTTP request: delivering it re-reads the destination and decides again, so a write replayed from the outbox
hours later still never duplicates a record nor overwrites a newer one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from integration_assets.core.errors import IntegrationError

__all__ = ["Outcome", "PlannedWrite", "Status", "idempotency_key"]


class Status(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # the destination already holds it: nothing sent
    WOULD_CREATE = "would_create"  # dry run
    WOULD_UPDATE = "would_update"  # dry run
    QUEUED = "queued"  # the destination failed or its circuit is open: waiting in ops.outbox
    REJECTED = "rejected"  # the vendor refused the value (400/422): in the review queue
    INVALID = "invalid"  # the payload broke its contract before sending: in the review queue
    CONFLICT = "conflict"  # the target is newer than the source: not overwritten, in the review queue
    BLOCKED = "blocked"  # outside the flow's access grant: never sent
    SKIPPED = "skipped"  # the flow's behaviour (create_only, update_only) does not allow it
    FAILED = "failed"  # anything else; the error says what


DELIVERED = frozenset({Status.CREATED, Status.UPDATED, Status.UNCHANGED})
NEEDS_REVIEW = frozenset({Status.REJECTED, Status.INVALID, Status.CONFLICT})


def idempotency_key(flow: str, record_id: str, version: str, step: str, payload: Any) -> str:
    """Derived from the record, its version and what is sent: the same write always carries the same key, a
    changed payload a new one (Stripe refuses a key reused with other parameters)."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"ia:{flow}:{record_id}:{version}:{step}:{digest}"


@dataclass(frozen=True)
class PlannedWrite:
    flow: str
    system: str  # destination role
    object_type: str  # destination object type
    record_id: str  # the source record this write copies from (canonical id, e.g. crm:30000051)
    operation: str  # create | update
    payload: dict[str, Any]  # what the destination should hold, in the canonical language
    idempotency_key: str
    group: str  # writes of one group are delivered in order (a customer before its invoices)
    review_ref: str  # system/object_type/vendor id: the record a person opens when this write needs review
    sequence: int = 0  # order within the group
    source_version: str = ""  # the source record's version the payload was read at
    destination_id: str | None = None  # the target record when it is known (updates)

    def row(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "system": self.system,
            "object_type": self.object_type,
            "record_id": self.record_id,
            "operation": self.operation,
            "payload": self.payload,
            "idempotency_key": self.idempotency_key,
            "group_key": self.group,
            "review_ref": self.review_ref,
            "sequence": self.sequence,
            "source_version": self.source_version,
            "destination_id": self.destination_id,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PlannedWrite:
        payload = row["payload"]
        return cls(
            flow=row["flow"],
            system=row["system"],
            object_type=row["object_type"],
            record_id=row["record_id"],
            operation=row["operation"],
            payload=json.loads(payload) if isinstance(payload, str) else dict(payload),
            idempotency_key=row["idempotency_key"],
            group=row["group_key"],
            review_ref=row["review_ref"],
            sequence=int(row["sequence"]),
            source_version=row["source_version"] or "",
            destination_id=row["destination_id"],
        )


@dataclass
class Outcome:
    """What delivering one planned write did."""

    write: PlannedWrite
    status: Status
    destination_id: str | None = None
    destination_version: str | None = None  # the target's version right after our write (its updated_at)
    detail: str = ""
    error: IntegrationError | None = None
    attempt: int = 1
    replayed: bool = False  # delivered from the outbox
    changes: dict[str, Any] = field(default_factory=dict)  # field → (before, after) for updates
    # the flow's fields as the destination holds them after a delivered outcome (written or already equal):
    # what the next run compares with to tell its own last write from a person's edit
    values: dict[str, Any] | None = None

    @property
    def next_action(self) -> str:
        return self.error.next_action if self.error is not None else ""
