"""Evidence that reads at a glance: records as a Dagster table capped and counted, money in its currency's
major units with the minor-unit figure kept, and a link to the vendor's page only where the vendor is real."""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity, TableMetadataValue

from integration_assets.core.evidence import RECORDS_KEYS, check_result, schema
from integration_assets.reconciliation.common import DIFF_SCHEMA, diff_row, money_text, outcome
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.links import record_url as stripe_url
from integration_assets.systems.crm.links import record_url as hubspot_url
from integration_assets.systems.support.links import record_url as zendesk_url


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (4_925_000, "USD", "49,250.00 USD"),
        (150_000, "JPY", "150,000 JPY"),  # no decimals: yen are the minor unit
        (12_345, "BHD", "12.345 BHD"),  # three decimals
        (-1_234, "EUR", "-12.34 EUR"),
        (0, "GBP", "0.00 GBP"),
        (5, "usd", "5 usd (minor units)"),  # not an ISO code: shown as the figure it is
    ],
)
def test_money_in_major_units_with_its_currency(minor: int, currency: str, shown: str) -> None:
    assert money_text(minor, currency) == shown


def test_links_only_to_the_real_vendor() -> None:
    assert stripe_url("invoices", "in_1", "https://api.stripe.com") == "https://dashboard.stripe.com/invoices/in_1"
    assert stripe_url("customers", "cus_1", "https://api.stripe.com/") == "https://dashboard.stripe.com/customers/cus_1"
    assert stripe_url("charges", "ch_1", "https://api.stripe.com") == "https://dashboard.stripe.com/payments/ch_1"
    assert zendesk_url("tickets", 42, "https://acme.zendesk.com") == "https://acme.zendesk.com/agent/tickets/42"
    assert zendesk_url("users", "7", "https://acme.zendesk.com/api/v2") == "https://acme.zendesk.com/agent/users/7"
    assert (
        hubspot_url("contacts", "51", "https://api.hubapi.com", portal="123")
        == "https://app.hubspot.com/contacts/123/record/0-1/51"
    )
    assert hubspot_url("deals", "9", "https://api.hubapi.com", portal="123").endswith("/record/0-3/9")
    for sandbox in ("http://127.0.0.1:8701", "http://localhost:8702", "", None):
        assert stripe_url("invoices", "in_1", sandbox) is None
        assert zendesk_url("tickets", 1, sandbox) is None
        assert hubspot_url("contacts", "1", sandbox, portal="123") is None
    assert hubspot_url("contacts", "1", "https://api.hubapi.com", portal="") is None  # no portal id, no page
    assert zendesk_url("tickets", 1, "https://zendesk.com") is None
    assert stripe_url("refunds", "re_1", "https://api.stripe.com") is None  # no page known for the type


def test_record_page_follows_the_configured_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_BASE_URL", "http://127.0.0.1:8702")
    assert CATALOG.record_page("billing", "invoices", "in_1") is None
    monkeypatch.setenv("STRIPE_BASE_URL", "https://api.stripe.com")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_x")
    assert CATALOG.record_page("billing", "invoices", "in_1") == "https://dashboard.stripe.com/invoices/in_1"
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_x")  # a test-mode key's records are on the /test/ pages
    assert CATALOG.record_page("billing", "invoices", "in_1") == "https://dashboard.stripe.com/test/invoices/in_1"
    monkeypatch.setenv("ZENDESK_BASE_URL", "https://acme.zendesk.com")
    ticket, user = ("support", "tickets", "5"), ("support", "users", "8")
    row = diff_row(ticket, "unknown_requester", "requester_id", "x", "y", user)
    assert row["link"] == "https://acme.zendesk.com/agent/tickets/5"
    assert (row["other_record"], row["other_link"]) == ("support/users/8", "https://acme.zendesk.com/agent/users/8")
    assert CATALOG.record_page("accounting", "invoices", "1") is None  # a role without pages


def test_records_are_a_capped_counted_table() -> None:
    rows = [
        diff_row(("billing", "invoices", f"in_{n}"), "paid_invoice_short", "amount_paid", "1.00 USD", "0.00 USD")
        for n in range(60)
    ]
    result = outcome(
        system="billing",
        rows=rows,
        kinds=("paid_invoice_short",),
        ok_summary="fine",
        summary="Invoices and payments disagree",
        next_action="fix",
        severity=AssetCheckSeverity.ERROR,
    )
    table = result.metadata["records"]
    assert isinstance(table, TableMetadataValue)
    assert [(c.name, c.type) for c in table.schema.columns] == [(c.name, c.type) for c in DIFF_SCHEMA.columns]
    assert all(name in result.metadata for name in RECORDS_KEYS)
    cap = result.metadata["records_shown"].value
    assert len(table.records) == cap < result.metadata["records_total"].value == 60
    assert f"{cap} of 60" in result.metadata["records_note"].value
    assert result.metadata["summary"].value.startswith(
        "Invoices and payments disagree: 60 paid_invoice_short; records billing/invoices/in_0, "
    )
    assert result.metadata["summary"].value.endswith("(+55 more).")
    assert result.metadata["sample_ids"].value.startswith("in_0, in_1")


def test_table_values_keep_their_types() -> None:
    result = check_result(
        passed=False,
        system="crm",
        summary="s",
        next_action="n",
        records=[{"id": 1, "amount": 250, "odd": object.__new__(type("Odd", (), {"__str__": lambda self: "odd"}))}],
        columns=schema(("id", "string"), ("amount", "int"), ("odd", "string"), ("absent", "string")),
    )
    (record,) = result.metadata["records"].records
    assert record.data == {"id": 1, "amount": 250, "odd": "odd", "absent": None}
