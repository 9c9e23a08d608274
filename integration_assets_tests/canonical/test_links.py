"""A deal's links to companies and contacts archived at the source (`canonical/build/links.py`), built in memory
from the generated dataset's records as HubSpot lists them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from integration_assets.canonical import review
from integration_assets.canonical.build import Built, build_entity
from integration_assets.mapping.dictionary import load_dictionary

DEALS, COMPANIES, CONTACTS = ("crm", "deals"), ("crm", "companies"), ("crm", "contacts")


def _records(dataset: Path, object_type: str) -> dict[str, dict]:
    found = json.loads((dataset / "hubspot" / f"{object_type}.json").read_text())
    return {str(r["id"]): {"payload": r, "is_deleted": bool(r.get("archived"))} for r in found}


@pytest.fixture
def raw(dataset: Path) -> dict:
    return {
        DEALS: _records(dataset, "deals"),
        COMPANIES: _records(dataset, "companies"),
        CONTACTS: _records(dataset, "contacts"),
        ("billing", "invoices"): {},
    }


def _build(raw: dict) -> Built:
    return build_entity("deals", load_dictionary(), copy.deepcopy(raw), review.load_decisions())


def _row(built: Built, deal: str) -> dict | None:
    frame = built.tables["deals"].set_index("deal_id")
    return frame.loc[f"crm:{deal}"].to_dict() if f"crm:{deal}" in frame.index else None


def _links(payload: dict, to_type: str) -> list[str]:
    return [str(link["id"]) for link in payload.get("associations", {}).get(to_type, {}).get("results", [])]


def _a_deal(raw: dict, built: Built) -> tuple[str, str, list[str]]:
    """A live deal accepted with one company and a contact or more, its company and contacts."""
    for rid, record in sorted(raw[DEALS].items()):
        payload = record["payload"]
        companies, contacts = _links(payload, "companies"), _links(payload, "contacts")
        if not record["is_deleted"] and len(companies) == 1 and contacts and _row(built, rid) is not None:
            return rid, companies[0], contacts
    raise AssertionError("the dataset has no live deal with one company and a contact")


def test_a_deal_whose_only_company_is_archived_goes_to_review_naming_it(raw: dict) -> None:
    before = _build(raw)
    deal, company, _ = _a_deal(raw, before)
    raw[COMPANIES][company]["is_deleted"] = True
    after = _build(raw)
    assert _row(after, deal) is None
    (item,) = [i for i in after.items if i.record_id == deal]
    assert (item.reason_code, item.field) == ("missing_required_field", "customer_id")
    assert f"crm:{company}" in item.detail and "archived or deleted" in item.detail
    others = before.tables["deals"][before.tables["deals"]["customer_id"] != f"crm:{company}"]
    unchanged = after.tables["deals"].set_index("deal_id").loc[others["deal_id"]].reset_index()
    pd.testing.assert_frame_equal(unchanged, others.reset_index(drop=True), check_like=True)


def test_a_second_live_company_becomes_the_client_and_archived_contacts_are_dropped(raw: dict) -> None:
    deal, company, contacts = _a_deal(raw, _build(raw))
    other = next(c for c, r in sorted(raw[COMPANIES].items()) if c != company and not r["is_deleted"])
    payload = raw[DEALS][deal]["payload"]
    payload["associations"]["companies"]["results"].append({"id": other, "type": "deal_to_company"})
    colleague = next(c for c, r in sorted(raw[CONTACTS].items()) if c not in contacts and not r["is_deleted"])
    payload["associations"]["contacts"]["results"].append({"id": colleague, "type": "deal_to_contact"})
    contacts = [*contacts, colleague]
    ambiguous = _build(raw)
    assert _row(ambiguous, deal) is None
    assert [i.reason_code for i in ambiguous.items if i.record_id == deal] == ["ambiguous_owner"]

    raw[COMPANIES][company]["is_deleted"] = True
    raw[CONTACTS][contacts[0]]["is_deleted"] = True
    row = _row(_build(raw), deal)
    assert row is not None and row["customer_id"] == f"crm:{other}"
    assert row["contact_ids"] == [f"crm:{c}" for c in contacts[1:]]


def test_links_sent_as_integers_read_alike(raw: dict) -> None:
    """An answer may carry ids as integers (HubSpot's v4 `toObjectId`): a deleted record is found either way."""
    deal, company, _ = _a_deal(raw, _build(raw))
    for link in raw[DEALS][deal]["payload"]["associations"]["companies"]["results"]:
        link["id"] = int(link["id"])
    raw[COMPANIES][company]["is_deleted"] = True
    built = _build(raw)
    assert _row(built, deal) is None
    assert [i.reason_code for i in built.items if i.record_id == deal] == ["missing_required_field"]


def test_a_deleted_deal_keeps_its_link_as_history(raw: dict) -> None:
    deal, company, _ = _a_deal(raw, _build(raw))
    raw[DEALS][deal]["is_deleted"] = True
    raw[COMPANIES][company]["is_deleted"] = True
    row = _row(_build(raw), deal)
    assert row is not None and row["is_deleted"] and row["customer_id"] == f"crm:{company}"
