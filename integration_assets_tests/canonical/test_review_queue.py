"""The review queue's life cycle on a real warehouse: open, counted again, ignored by decision, resolved."""

from __future__ import annotations

from integration_assets.canonical import review
from integration_assets.canonical.review import Decision, Decisions, ReviewItem
from integration_assets.core.warehouse import Warehouse

NO_DECISIONS = Decisions()
ITEM = ReviewItem("crm", "contacts", "20000063", "invalid_email", "email: not an address")


def _run(warehouse: Warehouse, items, decisions: Decisions = NO_DECISIONS) -> review.ReviewSummary:
    with warehouse.transaction() as tx:
        return review.sync_items(tx, items, found_by="canonical/customers", run_id="r", decisions=decisions)


def _status(warehouse: Warehouse) -> list[tuple]:
    return warehouse.query("SELECT status, occurrences FROM ops.review_queue")


def test_an_ignored_item_comes_back_when_its_decision_goes_and_resolves_when_fixed(tmp_path) -> None:
    warehouse = Warehouse.from_url(str(tmp_path / "w.duckdb"))
    warehouse.ensure_ops_tables()
    review.ensure_table(warehouse)
    assert _run(warehouse, [ITEM]).opened == 1
    assert _run(warehouse, [ITEM]).still_open == 1 and _status(warehouse) == [("open", 2)]
    ignore = Decisions(decisions=[Decision(**{k: getattr(ITEM, k) for k in review.KEY}, ignore=True)])
    assert _run(warehouse, [ITEM], ignore).ignored == 1 and _status(warehouse) == [("ignored", 3)]
    # The decision is withdrawn and the problem is still there: people see it again.
    _run(warehouse, [ITEM])
    assert _status(warehouse) == [("open", 4)]
    _run(warehouse, [ITEM], ignore)
    # The source was fixed while the item was ignored: it resolves, it does not stay ignored forever.
    assert _run(warehouse, []).resolved == 1
    status, resolution = warehouse.query("SELECT status, resolution FROM ops.review_queue")[0]
    assert (status, resolution) == ("resolved", "the source record was fixed")


def test_next_actions_name_the_record_in_plain_words() -> None:
    assert ITEM.next_action() == "correct the email address of contact 20000063 in HubSpot"
