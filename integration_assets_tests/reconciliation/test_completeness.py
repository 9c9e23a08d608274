"""Completeness counts a quarantined record apart: live at the vendor, not in the raw table, yet not missing."""

from __future__ import annotations

from integration_assets.reconciliation.completeness import _count_of, completeness_problems
from integration_assets.systems import CATALOG

CONTACTS = CATALOG.stream_of("crm", "contacts")


def test_with_the_vendor_s_ids_a_quarantined_record_is_not_missing() -> None:
    vendor = frozenset({"1", "2", "3", "4"})
    rows = completeness_problems(CONTACTS, 4, vendor, {"1", "2"}, {"3"})
    assert [(r["id"], r["problem"]) for r in rows] == [("4", "missing_records")]
    assert completeness_problems(CONTACTS, 4, vendor, {"1", "2", "4"}, {"3"}) == []


def test_with_a_count_only_the_quarantined_records_come_off_the_gap() -> None:
    assert completeness_problems(CONTACTS, 4, None, {"1", "2", "4"}, {"3"}) == []
    rows = completeness_problems(CONTACTS, 5, None, {"1", "2", "4"}, {"3"})
    assert [(r["problem"], r["this_side"]) for r in rows] == [("missing_records", "3 loaded, 1 quarantined")]
    assert _count_of(rows, "missing_records", 5, 4) == 1
    # a quarantined id whose older version is loaded is counted once, as loaded
    assert completeness_problems(CONTACTS, 3, None, {"1", "2", "3"}, {"3"}) == []
