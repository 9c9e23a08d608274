"""The dataset generator: determinism, layout, vendor shapes, cross-system integrity and planted defects.

Every test writes real files under tmp_path and reads them back as the sandbox server would.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from integration_sandbox.generator import ANCHOR, DEFECT_KINDS, FILES, PLANS, generate, implied_plan

FILE_OF = {
    ("crm", "companies"): "hubspot/companies",
    ("crm", "contacts"): "hubspot/contacts",
    ("crm", "deals"): "hubspot/deals",
    ("billing", "customers"): "stripe/customers",
    ("billing", "invoices"): "stripe/invoices",
    ("billing", "charges"): "stripe/charges",
    ("support", "organizations"): "zendesk/organizations",
    ("support", "users"): "zendesk/users",
    ("support", "tickets"): "zendesk/tickets",
}
PHONE = re.compile(r"^\+\d[\d ]{7,}$")
EMAIL = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9-]+(\.[a-z0-9-]+)+$")
HUBSPOT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ZENDESK_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
STRIPE_ID = re.compile(r"^(cus|in|ch|pi)_[A-Za-z0-9]{14}$")
STAGES = {
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
}
ANCHOR_S = calendar.timegm((2026, 10, 1, 0, 0, 0))
OLDEST_S = ANCHOR_S - 401 * 86_400


class Dataset:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text())
        self.files = {name: json.loads((root / f"{name}.json").read_text()) for name in FILES}
        self.by_id = {name: {r["id"]: r for r in records} for name, records in self.files.items()}
        self.flagged = {(FILE_OF[d["system"], d["object_type"]], d["id"]) for d in self.manifest["defects"]}

    def clean(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.files[name] if (name, r["id"]) not in self.flagged]

    def kinds(self) -> set[str]:
        return {d["kind"] for d in self.manifest["defects"]}


def make(tmp_path: Path, seed: int, scale: int, rate: float) -> Dataset:
    out = tmp_path / f"s{seed}-n{scale}-r{rate}"
    manifest = generate(out, seed=seed, scale=scale, defect_rate=rate)
    data = Dataset(out)
    assert manifest == data.manifest
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return make(tmp_path_factory.mktemp("gen"), seed=7, scale=90, rate=0.3)


@pytest.fixture(scope="module")
def clean_data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return make(tmp_path_factory.mktemp("gen"), seed=11, scale=300, rate=0.0)


@pytest.fixture(params=["data", "clean_data"])
def any_data(request: pytest.FixtureRequest) -> Dataset:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------- determinism and layout


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=5, scale=45, defect_rate=0.2)
    second = generate(tmp_path / "b", seed=5, scale=45, defect_rate=0.2)
    assert first == second
    for name in (*FILES, "manifest"):
        assert (tmp_path / "a" / f"{name}.json").read_bytes() == (tmp_path / "b" / f"{name}.json").read_bytes()


def test_different_seed_gives_a_different_business(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=1, scale=20)
    generate(tmp_path / "b", seed=2, scale=20)
    for name in ("hubspot/companies", "hubspot/contacts", "zendesk/users"):
        assert (tmp_path / "a" / f"{name}.json").read_bytes() != (tmp_path / "b" / f"{name}.json").read_bytes()


@pytest.mark.parametrize(
    ("seed", "scale", "rate"),
    [(0, 1, 0.0), (1, 1, 1.0), (4, 2, 0.5), (5, 7, 0.5), (2, 30, 0.1), (3, 150, 0.05), (9, 40, 1.0)],
)
def test_counts_match_the_arrays_and_files_are_streamed_arrays(
    tmp_path: Path, seed: int, scale: int, rate: float
) -> None:
    data = make(tmp_path, seed, scale, rate)
    manifest = data.manifest
    assert list(manifest) == ["seed", "scale", "defect_rate", "anchor", "counts", "archived", "defects"]
    assert (manifest["seed"], manifest["scale"], manifest["defect_rate"]) == (seed, scale, rate)
    assert manifest["anchor"] == ANCHOR == "2026-10-01T00:00:00Z"
    assert manifest["counts"] == {name: len(data.files[name]) for name in FILES}
    archived = sum(1 for c in data.files["hubspot/contacts"] if c["archived"])
    assert manifest["archived"] == {"hubspot/contacts": archived}
    for name in ("hubspot/companies", "hubspot/contacts", "hubspot/deals"):
        assert len(data.files[name]) >= 1
    for name in FILES:
        text = (data.root / f"{name}.json").read_text()
        assert text.startswith("[") and text.endswith("]\n")
        lines = text.splitlines()
        assert len(lines) == max(1, len(data.files[name]))  # one record per line
    total = sum(manifest["counts"].values())
    assert 4 * scale <= total <= 16 * scale + 10


def test_regenerating_into_the_same_folder_replaces_everything(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, scale=80, defect_rate=0.5)
    manifest = generate(tmp_path, seed=1, scale=3)
    data = Dataset(tmp_path)
    assert manifest["counts"] == {name: len(data.files[name]) for name in FILES}
    assert manifest["defects"] == []


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    for kwargs in ({"scale": 0}, {"defect_rate": -0.1}, {"defect_rate": 1.5}, {"seed": "x"}):
        with pytest.raises(ValueError):
            generate(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_scale_grows_the_business_linearly(tmp_path: Path) -> None:
    small = make(tmp_path, 3, 100, 0.0).manifest["counts"]
    large = make(tmp_path, 3, 400, 0.0).manifest["counts"]
    per_company = sum(large.values()) / 400
    assert 10 <= per_company <= 12
    assert large["hubspot/companies"] == 400
    assert 3 * sum(small.values()) < sum(large.values()) < 5 * sum(small.values())


# ------------------------------------------------------------------------------------------ vendor shapes


def test_hubspot_shapes(any_data: Dataset) -> None:
    companies, contacts, deals = (any_data.files[f"hubspot/{t}"] for t in ("companies", "contacts", "deals"))
    for records, start in ((companies, 10_000_001), (contacts, 20_000_001), (deals, 30_000_001)):
        ids = [int(r["id"]) for r in records]
        assert ids == list(range(start, start + len(ids)))
        for r in records:
            assert isinstance(r["id"], str)
            assert r["properties"]["hs_object_id"] == r["id"]
            assert all(v is None or isinstance(v, str) for v in r["properties"].values())
            assert HUBSPOT_TIME.match(r["createdAt"]) and HUBSPOT_TIME.match(r["updatedAt"])
            assert r["createdAt"] <= r["updatedAt"]
    for c in companies:
        assert set(c) == {"id", "properties", "createdAt", "updatedAt", "archived"}
        assert c["archived"] is False
        assert set(c["properties"]) == {
            "name",
            "domain",
            "phone",
            "city",
            "industry",
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
        }
        assert c["createdAt"] == c["properties"]["createdate"]
        assert c["updatedAt"] == c["properties"]["hs_lastmodifieddate"]
    for c in contacts:
        assert set(c) == {"id", "properties", "createdAt", "updatedAt", "archived"} | (
            {"archivedAt"} if c["archived"] else set()
        )
        assert set(c["properties"]) == {
            "email",
            "firstname",
            "lastname",
            "phone",
            "lifecyclestage",
            "createdate",
            "lastmodifieddate",
            "hs_object_id",
            "associatedcompanyid",
        }
    for d in deals:
        assert set(d) == {"id", "properties", "createdAt", "updatedAt", "archived", "associations"}
        assert d["properties"]["pipeline"] == "default"
        assert d["properties"]["deal_currency_code"] in {"USD", "EUR", "GBP", "JPY"}
        assert d["associations"]["companies"]["results"][0]["type"] == "deal_to_company"
        assert d["associations"]["contacts"]["results"][0]["type"] == "deal_to_contact"


def test_stripe_shapes(any_data: Dataset) -> None:
    for name, prefix, obj in (
        ("stripe/customers", "cus_", "customer"),
        ("stripe/invoices", "in_", "invoice"),
        ("stripe/charges", "ch_", "charge"),
    ):
        ids = [r["id"] for r in any_data.files[name]]
        assert len(ids) == len(set(ids))
        for r in any_data.files[name]:
            assert r["id"].startswith(prefix) and STRIPE_ID.match(r["id"])
            assert r["object"] == obj and r["livemode"] is False
            assert isinstance(r["created"], int) and OLDEST_S <= r["created"] <= ANCHOR_S
            assert "deleted" not in r
    for c in any_data.files["stripe/customers"]:
        assert c["balance"] == 0 and c["delinquent"] is False and c["address"] is None
        assert re.fullmatch(r"[0-9A-Z]{8}", c["invoice_prefix"])
    numbers = [i["number"] for i in any_data.files["stripe/invoices"]]
    assert len(numbers) == len(set(numbers))
    for i in any_data.files["stripe/invoices"]:
        assert i["status"] in {"paid", "open", "void", "uncollectible"}
        assert i["collection_method"] == "send_invoice"
        assert i["amount_due"] == i["total"] == i["subtotal"]
        assert i["amount_remaining"] == i["amount_due"] - i["amount_paid"]
        assert i["paid"] is (i["status"] == "paid")
        assert i["due_date"] > i["created"]
        transitions = i["status_transitions"]
        assert set(transitions) == {"finalized_at", "paid_at", "voided_at", "marked_uncollectible_at"}
        assert (transitions["paid_at"] is not None) is (i["status"] == "paid")
        assert (transitions["voided_at"] is not None) is (i["status"] == "void")
        assert (transitions["marked_uncollectible_at"] is not None) is (i["status"] == "uncollectible")
        for value in transitions.values():
            assert value is None or OLDEST_S <= value <= ANCHOR_S
    for ch in any_data.files["stripe/charges"]:
        assert ch["amount"] == ch["amount_captured"] > 0 and ch["amount_refunded"] == 0
        assert ch["status"] == "succeeded" and ch["paid"] is ch["captured"] is True
        assert ch["payment_intent"].startswith("pi_") and ch["metadata"] == {}
        assert set(ch["billing_details"]) == {"email", "name", "phone", "address"}


def test_zendesk_shapes(any_data: Dataset) -> None:
    for name, start, path in (
        ("zendesk/organizations", 360_000_001, "organizations"),
        ("zendesk/users", 370_000_001, "users"),
        ("zendesk/tickets", 1, "tickets"),
    ):
        records = any_data.files[name]
        assert [r["id"] for r in records] == list(range(start, start + len(records)))
        for r in records:
            assert type(r["id"]) is int
            assert r["url"] == f"https://sandbox.zendesk.com/api/v2/{path}/{r['id']}.json"
            assert ZENDESK_TIME.match(r["created_at"]) and ZENDESK_TIME.match(r["updated_at"])
            assert r["created_at"] <= r["updated_at"] <= "2026-10-01T00:00:00Z"
    agents = [u for u in any_data.files["zendesk/users"] if u["role"] == "agent"]
    scale = any_data.manifest["scale"]
    assert len(agents) == min(20, max(1, scale // 50))
    assert any_data.files["zendesk/users"][: len(agents)] == agents  # generated up front
    for a in agents:
        assert a["email"].endswith("@sandbox-support.test")
        assert a["external_id"] is None and a["organization_id"] is None
    for t in any_data.files["zendesk/tickets"]:
        assert t["status"] in {"new", "open", "pending", "hold", "solved", "closed"}
        assert t["priority"] in {"urgent", "high", "normal", "low"}
        assert t["type"] in {"problem", "incident", "question", "task"}
        assert t["raw_subject"] == t["subject"] and t["via"] == {"channel": "email"}
        assert t["generated_timestamp"] == calendar.timegm(
            tuple(int(p) for p in re.split(r"[-T:Z]", t["updated_at"])[:6])
        )


# ------------------------------------------------------------------------------- integrity of clean records


def test_referential_integrity(any_data: Dataset) -> None:
    d = any_data
    company_ids = set(d.by_id["hubspot/companies"])
    contacts = d.by_id["hubspot/contacts"]
    deals = d.by_id["hubspot/deals"]
    for c in d.files["hubspot/contacts"]:
        assert c["properties"]["associatedcompanyid"] in company_ids
    for deal in d.files["hubspot/deals"]:
        assert deal["associations"]["companies"]["results"][0]["id"] in company_ids
        contact = contacts[deal["associations"]["contacts"]["results"][0]["id"]]
        assert contact["archived"] is False
        assert ("hubspot/contacts", contact["id"]) not in d.flagged
    for cus in d.clean("stripe/customers"):
        assert cus["metadata"]["hubspot_company_id"] in company_ids
    customers = d.by_id["stripe/customers"]
    for inv in d.files["stripe/invoices"]:
        assert inv["customer"] in customers
        deal = deals[inv["metadata"]["hubspot_deal_id"]]
        assert deal["properties"]["dealstage"] == "closedwon"
        owner = customers[inv["customer"]]["metadata"]["hubspot_company_id"]
        assert deal["associations"]["companies"]["results"][0]["id"] == owner
    invoices = d.by_id["stripe/invoices"]
    for ch in d.clean("stripe/charges"):
        assert ch["invoice"] in invoices
        assert ch["customer"] == invoices[ch["invoice"]]["customer"]
        assert ch["currency"] == invoices[ch["invoice"]]["currency"]
    for ch in d.files["stripe/charges"]:
        assert ch["customer"] in customers
    orgs = d.by_id["zendesk/organizations"]
    for org in d.files["zendesk/organizations"]:
        company = d.by_id["hubspot/companies"][org["external_id"]]
        assert org["name"] == company["properties"]["name"]
        assert org["domain_names"] == [company["properties"]["domain"]]
    users = d.by_id["zendesk/users"]
    agents = {u["id"] for u in d.files["zendesk/users"] if u["role"] == "agent"}
    for u in d.files["zendesk/users"]:
        if u["role"] == "end-user":
            assert u["organization_id"] in orgs
        if u["external_id"] is not None:
            contact = contacts[u["external_id"]]
            assert contact["archived"] is False
            assert u["email"] == contact["properties"]["email"]
            assert u["phone"] == contact["properties"]["phone"]
            company = contact["properties"]["associatedcompanyid"]
            assert orgs[u["organization_id"]]["external_id"] == company
    for t in d.files["zendesk/tickets"]:
        requester = users[t["requester_id"]]
        assert requester["role"] == "end-user"
        assert requester["organization_id"] == t["organization_id"]
        assert t["submitter_id"] == t["requester_id"]
        assert t["assignee_id"] in agents or (t["assignee_id"] is None and t["status"] == "new")
    for t in d.clean("zendesk/tickets"):
        assert users[t["requester_id"]]["external_id"] is not None


def test_every_clean_contact_and_user_has_a_valid_phone_and_email(any_data: Dataset) -> None:
    for c in any_data.clean("hubspot/contacts"):
        assert PHONE.match(c["properties"]["phone"]), c
        assert EMAIL.match(c["properties"]["email"]), c
    for u in any_data.clean("zendesk/users"):
        assert PHONE.match(u["phone"]), u
        assert EMAIL.match(u["email"]), u
    for c in any_data.files["hubspot/companies"]:
        assert PHONE.match(c["properties"]["phone"]), c
    emails = [c["properties"]["email"] for c in any_data.files["hubspot/contacts"] if c["properties"]["email"]]
    assert len(emails) == len(set(emails))


def test_clean_invoices_total_their_deal_in_minor_units(any_data: Dataset) -> None:
    deals = any_data.by_id["hubspot/deals"]
    seen_currencies = set()
    for inv in any_data.clean("stripe/invoices"):
        props = deals[inv["metadata"]["hubspot_deal_id"]]["properties"]
        currency, amount = props["deal_currency_code"], props["amount"]
        seen_currencies.add(currency)
        assert inv["currency"] == currency.lower()
        if currency == "JPY":  # zero-decimal: no scaling, no decimals in HubSpot either
            assert re.fullmatch(r"\d+", amount)
            expected = int(amount)
        else:
            assert re.fullmatch(r"\d+\.\d\d", amount)
            whole, cents = amount.split(".")
            expected = int(whole) * 100 + int(cents)
        assert inv["total"] == inv["amount_due"] == expected
    assert seen_currencies == {"USD", "EUR", "GBP", "JPY"}


def test_every_clean_won_deal_has_exactly_one_invoice(any_data: Dataset) -> None:
    invoiced = Counter(i["metadata"]["hubspot_deal_id"] for i in any_data.files["stripe/invoices"])
    won = [d for d in any_data.clean("hubspot/deals") if d["properties"]["dealstage"] == "closedwon"]
    assert won
    for deal in won:
        assert invoiced[deal["id"]] == 1
    assert max(invoiced.values()) == 1


def test_clean_payments_cover_invoices_exactly(any_data: Dataset) -> None:
    paid_by: Counter[str] = Counter()
    for ch in any_data.files["stripe/charges"]:
        paid_by[ch["invoice"]] += ch["amount"]
    for inv in any_data.clean("stripe/invoices"):
        assert paid_by[inv["id"]] == inv["amount_paid"]
        if inv["status"] == "paid":
            assert inv["amount_paid"] == inv["total"]
            assert inv["status_transitions"]["paid_at"] >= inv["status_transitions"]["finalized_at"]
        if inv["status"] in ("void", "uncollectible"):
            assert inv["amount_paid"] == 0


def test_invoice_lines_periods_attempts_and_cards_agree(any_data: Dataset) -> None:
    """Planted defects included: they break links between systems, never an invoice's own arithmetic."""
    charges_of: Counter[str] = Counter(ch["invoice"] for ch in any_data.files["stripe/charges"])
    deals = any_data.by_id["hubspot/deals"]
    for inv in any_data.files["stripe/invoices"]:
        lines = inv["lines"]["data"]
        assert sum(line["amount"] for line in lines) == inv["total"] == inv["subtotal"] == inv["amount_due"]
        assert inv["lines"]["total_count"] == len(lines) in (1, 2)
        assert all(line["currency"] == inv["currency"] and line["amount"] > 0 for line in lines)
        product = deals[inv["metadata"]["hubspot_deal_id"]]["properties"]["dealname"].rsplit(" - ", 1)[1]
        assert lines[0]["description"] == product  # what the deal sold
        assert inv["period_start"] <= inv["period_end"] == inv["created"] < inv["status_transitions"]["finalized_at"]
        for line in lines:
            assert inv["period_start"] <= line["period"]["start"] == line["period"]["end"] <= inv["period_end"]
        assert inv["attempt_count"] == charges_of[inv["id"]] and inv["attempted"] is (inv["attempt_count"] > 0)
        if inv["status"] == "paid":
            assert inv["attempt_count"] >= 1
    cards: dict[str, set[tuple[str, str, int]]] = {}
    for ch in any_data.files["stripe/charges"]:
        card = ch["payment_method_details"]["card"]
        charged = time.gmtime(ch["created"])
        assert ch["disputed"] is False and (card["exp_year"], card["exp_month"]) > (charged.tm_year, charged.tm_mon)
        cards.setdefault(ch["customer"], set()).add((card["brand"], card["last4"], card["exp_year"]))
    assert all(len(found) == 1 for found in cards.values())  # one card per customer, unexpired throughout


def test_clean_orgs_follow_the_crm(any_data: Dataset) -> None:
    companies = any_data.by_id["hubspot/companies"]
    won: Counter[str] = Counter()
    for deal in any_data.files["hubspot/deals"]:
        if deal["properties"]["dealstage"] == "closedwon":
            won[deal["associations"]["companies"]["results"][0]["id"]] += 1
    plans = Counter()
    for org in any_data.clean("zendesk/organizations"):
        company = companies[org["external_id"]]
        assert org["organization_fields"]["plan"] == implied_plan(won[company["id"]])
        # the CRM is the newer side: the org was last touched before the company
        assert org["updated_at"] < company["properties"]["hs_lastmodifieddate"][:19] + "Z"
        plans[org["organization_fields"]["plan"]] += 1
    assert set(plans) <= set(PLANS)


def test_timestamps_stay_within_400_days_before_the_anchor(any_data: Dataset) -> None:
    lowest, highest = "2025-08-27", "2026-10-01T00:00:00.000Z"
    for name in ("hubspot/companies", "hubspot/contacts", "hubspot/deals"):
        for r in any_data.clean(name):
            assert lowest <= r["createdAt"] <= r["updatedAt"] <= highest
    for deal in any_data.clean("hubspot/deals"):
        if deal["properties"]["dealstage"] in ("closedwon", "closedlost"):
            assert deal["properties"]["createdate"] <= deal["properties"]["closedate"] <= highest


def test_archived_contacts_are_rare_and_marked(clean_data: Dataset) -> None:
    archived = [c for c in clean_data.files["hubspot/contacts"] if c["archived"]]
    assert archived
    assert len(archived) <= 0.03 * len(clean_data.files["hubspot/contacts"])
    for c in archived:
        assert HUBSPOT_TIME.match(c["archivedAt"])
    external = {u["external_id"] for u in clean_data.files["zendesk/users"]}
    assert not external & {c["id"] for c in archived}


def test_distributions_look_like_a_business(clean_data: Dataset) -> None:
    stages = Counter(d["properties"]["dealstage"] for d in clean_data.files["hubspot/deals"])
    assert set(stages) == STAGES
    assert 0.30 <= stages["closedwon"] / sum(stages.values()) <= 0.50
    statuses = Counter(i["status"] for i in clean_data.files["stripe/invoices"])
    assert 0.55 <= statuses["paid"] / sum(statuses.values()) <= 0.85
    assert statuses["open"] > 0
    orgs = len(clean_data.files["zendesk/organizations"])
    assert 0.6 <= orgs / clean_data.manifest["scale"] <= 0.8
    with_won = {
        d["associations"]["companies"]["results"][0]["id"]
        for d in clean_data.files["hubspot/deals"]
        if d["properties"]["dealstage"] == "closedwon"
    }
    owners = {c["metadata"]["hubspot_company_id"] for c in clean_data.files["stripe/customers"]}
    assert with_won <= owners and len(owners) > len(with_won)


# ------------------------------------------------------------------------------------------------ defects


def test_no_defects_at_rate_zero(clean_data: Dataset) -> None:
    assert clean_data.manifest["defects"] == []


@pytest.mark.parametrize(("seed", "scale", "rate"), [(7, 90, 0.3), (1, 30, 0.01), (2, 31, 0.0001)])
def test_every_kind_is_planted_when_rate_is_positive(tmp_path: Path, seed: int, scale: int, rate: float) -> None:
    data = make(tmp_path, seed, scale, rate)
    assert data.kinds() == set(DEFECT_KINDS)
    families = (
        len(data.manifest["defects"]) - Counter(d["kind"] for d in data.manifest["defects"])["duplicate_record"] // 2
    )
    assert families == max(round(rate * scale), len(DEFECT_KINDS))


def test_defect_count_follows_the_rate_and_small_scales(tmp_path: Path) -> None:
    def planted(data: Dataset) -> list[str]:
        kinds = [d["kind"] for d in data.manifest["defects"]]
        return [k for i, k in enumerate(kinds) if not (k == "duplicate_record" and kinds[i - 1] == k)]

    assert len(planted(make(tmp_path, 1, 200, 0.5))) == 100
    assert len(planted(make(tmp_path, 1, 40, 1.0))) == 40  # one per family at most
    assert planted(make(tmp_path, 1, 10, 0.1)) == list(DEFECT_KINDS)[:5]  # as many kinds as fit
    assert planted(make(tmp_path, 1, 1, 1.0)) == ["missing_required_field"]


def test_defect_entries_name_existing_records(data: Dataset) -> None:
    defects = data.manifest["defects"]
    for d in defects:
        assert list(d) == ["kind", "system", "object_type", "id", "expected", "detail"]
        assert (d["system"], d["object_type"], d["expected"]) == DEFECT_KINDS[d["kind"]]
        name = FILE_OF[d["system"], d["object_type"]]
        assert d["id"] in data.by_id[name], d
        assert type(d["id"]) is (int if name.startswith("zendesk/") else str)
        assert d["expected"] in {"review", "reconciliation", "conflict"}
        assert isinstance(d["detail"], str) and len(d["detail"]) > 10
    assert len({(d["object_type"], d["id"]) for d in defects}) == len(defects)


def test_each_defect_is_what_the_manifest_says(data: Dataset) -> None:
    by_id, deals, invoices = data.by_id, data.by_id["hubspot/deals"], data.by_id["stripe/invoices"]
    companies = data.files["hubspot/companies"]
    charges_of: Counter[str] = Counter()
    for ch in data.files["stripe/charges"]:
        charges_of[ch["invoice"]] += ch["amount"]
    for d in data.manifest["defects"]:
        record = by_id[FILE_OF[d["system"], d["object_type"]]][d["id"]]
        props = record.get("properties", {})
        kind = d["kind"]
        if kind == "missing_required_field":
            assert props["email"] is None
        elif kind == "invalid_email":
            assert not EMAIL.match(props["email"])
        elif kind == "unparseable_phone":
            assert not PHONE.match(props["phone"])
        elif kind == "invalid_date":
            with pytest.raises(ValueError):
                time.strptime(props["closedate"][:19], "%Y-%m-%dT%H:%M:%S")
        elif kind == "negative_amount":
            assert props["amount"].startswith("-") and props["dealstage"] != "closedwon"
        elif kind == "unknown_status_label":
            assert props["dealstage"] not in STAGES
        elif kind == "unknown_currency":
            assert record["currency"] == "xyz"
            assert deals[record["metadata"]["hubspot_deal_id"]]["properties"]["dealstage"] == "closedwon"
        elif kind == "duplicate_record":
            same = [
                c
                for c in companies
                if (c["properties"]["name"], c["properties"]["domain"]) == (props["name"], props["domain"])
            ]
            assert len(same) == 2
        elif kind == "ambiguous_owner":
            assert "hubspot_company_id" not in record["metadata"]
            domain = record["email"].split("@")[1]
            owners = [c for c in companies if c["properties"]["domain"] == domain]
            assert len({c["properties"]["name"] for c in owners}) == 2
        elif kind == "won_deal_without_invoice":
            assert props["dealstage"] == "closedwon"
            assert all(i["metadata"]["hubspot_deal_id"] != record["id"] for i in invoices.values())
        elif kind == "invoice_amount_mismatch":
            deal = deals[record["metadata"]["hubspot_deal_id"]]["properties"]
            amount = deal["amount"].replace(".", "")
            assert (record["total"], record["currency"]) != (int(amount), deal["deal_currency_code"].lower())
            assert record["status"] == "paid" and charges_of[record["id"]] == record["total"]
        elif kind == "charge_for_missing_invoice":
            assert record["invoice"] not in invoices and record["invoice"].startswith("in_")
        elif kind == "paid_invoice_short":
            assert record["status"] == "paid" and record["amount_paid"] == record["total"]
            assert 0 < charges_of[record["id"]] < record["total"]
        elif kind == "unknown_requester":
            requester = by_id["zendesk/users"][record["requester_id"]]
            assert requester["external_id"] is None and requester["role"] == "end-user"
            crm_emails = {c["properties"]["email"] for c in data.files["hubspot/contacts"]}
            assert requester["email"] not in crm_emails
            assert requester["organization_id"] == record["organization_id"]
        elif kind == "target_newer_than_source":
            company = by_id["hubspot/companies"][record["external_id"]]
            assert record["updated_at"] > company["properties"]["hs_lastmodifieddate"][:19] + "Z"
            won = sum(
                1
                for deal in data.files["hubspot/deals"]
                if deal["properties"]["dealstage"] == "closedwon"
                and deal["associations"]["companies"]["results"][0]["id"] == company["id"]
            )
            assert record["organization_fields"]["plan"] != implied_plan(won)
        else:  # pragma: no cover
            pytest.fail(f"untested kind {kind}")


def test_defects_do_not_disturb_clean_families(tmp_path: Path) -> None:
    """A family's content depends on its own seed only: a clean family reads the same at any rate."""
    clean = make(tmp_path, 4, 60, 0.0)
    dirty = make(tmp_path, 4, 60, 0.5)
    names = {c["properties"]["name"] for c in clean.files["hubspot/companies"]}
    dirty_names = {c["properties"]["name"] for c in dirty.files["hubspot/companies"]}
    assert names <= dirty_names
    emails = {c["properties"]["email"] for c in clean.files["hubspot/contacts"]}
    clean_dirty_emails = {c["properties"]["email"] for c in dirty.clean("hubspot/contacts")}
    assert len(emails & clean_dirty_emails) >= 0.6 * len(emails)
