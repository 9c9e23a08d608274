"""Normalizers for ids and labels, and every clean and planted-defect value of a generated dataset."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from integration_assets.mapping.normalize import (
    Money,
    is_negative,
    namespaced_id,
    normalize_email,
    normalize_instant,
    normalize_label,
    normalize_money,
    normalize_phone,
)
from integration_assets_tests.testing.normalizers import reason
from integration_sandbox.generator import DEFECT_KINDS, generate

# ---------------------------------------------------------------------------------------- ids and labels


def test_namespaced_id() -> None:
    assert namespaced_id("crm", "123") == "crm:123"
    assert namespaced_id("support", 123) == "support:123"
    assert namespaced_id("billing", "cus_Abc123") == "billing:cus_Abc123"
    for system, raw in [
        ("crm", None),
        ("crm", ""),
        ("crm", "  "),
        ("crm", " 123"),
        ("crm", True),
        ("crm", 1.0),
        ("crm", "12\n3"),
        ("hubspot", "1"),
        ("", "1"),
    ]:
        with pytest.raises(ValueError):
            namespaced_id(system, raw)


DEAL_STAGES = {
    "appointmentscheduled": "open",
    "qualifiedtobuy": "open",
    "presentationscheduled": "open",
    "decisionmakerboughtin": "open",
    "contractsent": "open",
    "closedwon": "won",
    "closedlost": "lost",
}


def test_label() -> None:
    assert normalize_label("closedwon", DEAL_STAGES) == "won"
    assert normalize_label("  closedlost ", DEAL_STAGES) == "lost"
    assert normalize_label(None, DEAL_STAGES) is None and normalize_label(" ", DEAL_STAGES) is None
    unknown = normalize_label("closed_maybe", DEAL_STAGES)
    assert reason(unknown) == "unknown_status_label"
    assert all(f"'{label}'" in unknown.detail for label in ("closed_maybe", "closedwon", "qualifiedtobuy"))
    assert reason(normalize_label("ClosedWon", DEAL_STAGES)) == "unknown_status_label"  # case-sensitive
    assert reason(normalize_label(3, DEAL_STAGES)) == "unknown_status_label"


# ---------------------------------------------------------------------------------------- generated data


def _load(root: Path, name: str) -> list[dict]:
    return json.loads((root / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    manifest = generate(out, seed=11, scale=60, defect_rate=0)
    assert manifest["defects"] == []
    return out


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("defective")
    manifest = generate(out, seed=12, scale=60, defect_rate=1.0)
    return out, manifest["defects"]


def _ok(result: object, kind: type) -> None:
    assert isinstance(result, kind), result


def test_every_clean_value_normalizes(clean: Path) -> None:
    seen = 0
    for name in ("hubspot/companies", "hubspot/contacts", "hubspot/deals"):
        for record in _load(clean, name):
            props = record["properties"]
            namespaced_id("crm", record["id"])
            for field in ("createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate"):
                if field in props:
                    _ok(normalize_instant(props[field]), datetime)
            _ok(normalize_instant(record["createdAt"]), datetime)
            if "email" in props:
                _ok(normalize_email(props["email"]), str)
            if "phone" in props:
                _ok(normalize_phone(props["phone"]), str)
            if "amount" in props:
                _ok(normalize_money(props["amount"], props["deal_currency_code"], unit="major"), Money)
                _ok(normalize_label(props["dealstage"], DEAL_STAGES), str)
            seen += 1
    for customer in _load(clean, "stripe/customers"):
        namespaced_id("billing", customer["id"])
        _ok(normalize_email(customer["email"]), str)
        assert customer["phone"] is None or isinstance(normalize_phone(customer["phone"]), str)
        _ok(normalize_instant(customer["created"]), datetime)
    for invoice in _load(clean, "stripe/invoices"):
        for field in ("total", "amount_due", "amount_paid", "amount_remaining"):
            _ok(normalize_money(invoice[field], invoice["currency"], unit="minor"), Money)
        for field in ("created", "due_date"):
            _ok(normalize_instant(invoice[field]), datetime)
        seen += 1
    for charge in _load(clean, "stripe/charges"):
        _ok(normalize_money(charge["amount"], charge["currency"], unit="minor"), Money)
        _ok(normalize_instant(charge["created"]), datetime)
    for name in ("zendesk/organizations", "zendesk/users", "zendesk/tickets"):
        for record in _load(clean, name):
            namespaced_id("support", record["id"])
            _ok(normalize_instant(record["created_at"]), datetime)
            _ok(normalize_instant(record["updated_at"]), datetime)
            if "email" in record:
                _ok(normalize_email(record["email"]), str)
                _ok(normalize_phone(record["phone"]), str)
            seen += 1
    assert seen > 300


def test_clean_amounts_agree_across_systems(clean: Path) -> None:
    """A won deal's major-unit amount and its invoice's minor-unit total are the same Money (JPY unscaled)."""
    deals = {d["id"]: d["properties"] for d in _load(clean, "hubspot/deals")}
    invoices = _load(clean, "stripe/invoices")
    assert invoices
    for invoice in invoices:
        deal = deals[invoice["metadata"]["hubspot_deal_id"]]
        assert normalize_money(deal["amount"], deal["deal_currency_code"], unit="major") == normalize_money(
            invoice["total"], invoice["currency"], unit="minor"
        )


def _by_id(root: Path) -> dict[tuple[str, object], dict]:
    index: dict[tuple[str, object], dict] = {}
    for name in ("hubspot/contacts", "hubspot/deals", "stripe/invoices"):
        for record in _load(root, name):
            index[(name.split("/")[1], record["id"])] = record
    return index


@pytest.mark.parametrize("region", [None, "US"])
def test_every_planted_defect_is_rejected(defective: tuple[Path, list[dict]], region: str | None) -> None:
    root, defects = defective
    records = _by_id(root)
    checked: dict[str, int] = {}
    for defect in defects:
        kind = defect["kind"]
        if DEFECT_KINDS[kind][2] != "review" or kind in ("duplicate_record", "ambiguous_owner"):
            continue
        record = records[(defect["object_type"], defect["id"])]
        props = record.get("properties", {})
        if kind == "invalid_email":
            result = normalize_email(props["email"])
        elif kind == "unparseable_phone":
            result = normalize_phone(props["phone"], region)
        elif kind == "invalid_date":
            result = normalize_instant(props["closedate"])
        elif kind == "unknown_currency":
            result = normalize_money(record["total"], record["currency"], unit="minor")
        elif kind == "missing_required_field":
            assert normalize_email(props["email"]) is None  # emptiness is left to the field dictionary
            checked[kind] = checked.get(kind, 0) + 1
            continue
        elif kind == "negative_amount":
            money = normalize_money(props["amount"], props["deal_currency_code"], unit="major")
            assert isinstance(money, Money) and is_negative(money)  # returned: the dictionary rejects it
            checked[kind] = checked.get(kind, 0) + 1
            continue
        else:
            assert kind == "unknown_status_label"
            result = normalize_label(props["dealstage"], DEAL_STAGES)
        assert reason(result) == kind, (defect, result)
        checked[kind] = checked.get(kind, 0) + 1
    expected = {
        "invalid_email",
        "unparseable_phone",
        "invalid_date",
        "unknown_currency",
        "missing_required_field",
        "negative_amount",
        "unknown_status_label",
    }
    assert set(checked) == expected
    assert checked["unparseable_phone"] >= 4 and checked["invalid_email"] >= 3 and checked["invalid_date"] >= 3
