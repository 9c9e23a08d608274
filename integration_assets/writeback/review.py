"""Write-back items in the review queue: values a destination refused, payloads that broke their contract, and
targets newer than their source. Kept apart from the canonical layer's items (`found_by` = `writeback/<flow>`),
so each side resolves only its own: an item resolves itself when its record is written or no longer needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from integration_assets.canonical import review
from integration_assets.core.warehouse import Warehouse
from integration_assets.writeback.model import Outcome, Status

__all__ = ["REASONS", "WriteReviewItem", "found_by", "sync_review"]

REASONS = {
    Status.REJECTED: "write_rejected",
    Status.INVALID: "write_contract_violation",
    Status.CONFLICT: "write_conflict",
}
WAITING = frozenset({Status.QUEUED, Status.SKIPPED})


@dataclass(frozen=True)
class WriteReviewItem(review.ReviewItem):
    action: str = ""

    def next_action(self) -> str:
        return self.action or super().next_action()


def found_by(flow: str) -> str:
    return f"writeback/{flow}"


def _ref(text: str) -> tuple[str, str, str]:
    system, object_type, record_id = text.split("/", 2)
    return system, object_type, record_id


def _item(outcome: Outcome) -> WriteReviewItem:
    system, object_type, record_id = _ref(outcome.write.review_ref)
    error = outcome.error
    return WriteReviewItem(
        system=system,
        object_type=object_type,
        record_id=record_id,
        reason_code=REASONS[outcome.status],
        detail=f"{outcome.write.flow} {outcome.write.operation} {outcome.write.object_type}: "
        + (f"{error.message} (HTTP {error.status})" if error is not None and error.status else outcome.detail),
        severity="WARNING" if outcome.status == Status.CONFLICT else "ERROR",
        action=outcome.next_action or _default_action(outcome),
    )


def _default_action(outcome: Outcome) -> str:
    if outcome.status == Status.CONFLICT:
        return (
            f"the {outcome.write.system} record was changed after its source: compare both, then correct the "
            "source (the next run writes it) or keep the target's value (record a decision to ignore this item)"
        )
    return f"fix the value at the source ({outcome.write.review_ref}); the next run writes it"


def sync_review(warehouse: Warehouse, flow: str, outcomes: Sequence[Outcome], run_id: str) -> review.ReviewSummary:
    """Opens items for this run's refusals; keeps items of records this run could not decide (still queued);
    resolves the rest, whose record was written or is no longer planned."""
    review.ensure_table(warehouse)
    decisions = review.load_decisions()
    items = {item.key: item for item in (_item(o) for o in outcomes if o.status in REASONS)}
    undecided = {o.write.review_ref for o in outcomes if o.status in WAITING}
    decided = {o.write.review_ref for o in outcomes if o.status not in WAITING}
    with warehouse.transaction() as tx:
        rows = tx.execute(f"SELECT * FROM {review.TABLE} WHERE found_by = ? AND status = 'open'", [found_by(flow)])
        for row in (dict(zip(tx.last_columns, r, strict=True)) for r in rows):
            key = tuple(row[k] for k in review.KEY)
            ref = "/".join(key[:3])
            if key not in items and ref in undecided and ref not in decided:
                items[key] = WriteReviewItem(
                    *key, detail=row["detail"] or "", severity=row["severity"] or "ERROR", action=row["next_action"]
                )
        return review.sync_items(tx, items.values(), found_by=found_by(flow), run_id=run_id, decisions=decisions)
