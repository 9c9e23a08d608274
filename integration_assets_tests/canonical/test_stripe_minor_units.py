"""Stripe amounts in currencies whose minor unit Stripe defines apart from ISO-4217 (ISK, UGX two-decimal, MGA
zero-decimal), next to JPY, BIF, KWD and USD: invoices for HubSpot deals, made and paid through the Stripe API
of the sandbox and synced into a real warehouse, land in canonical.invoices and canonical.payments in ISO minor
units, equal to their deals' amounts (which HubSpot states in major units)."""

from __future__ import annotations

import json
import uuid

from dagster import DagsterInstance

from integration_assets.mapping.normalize import Money
from integration_assets_tests.testing.stripe import client
from integration_assets_tests.testing.writeback import new_company, sync, table, won_deal
from integration_sandbox.server import Sandbox

# currency, the invoice's amount as Stripe states it, the same amount in ISO-4217 minor units
CASES = [
    ("isk", 500_000, 5_000),  # 5,000 ISK: Stripe keeps two decimals, ISO has none
    ("ugx", 1_500_000, 15_000),  # 15,000 UGX: the same special case
    ("mga", 150_000, 15_000_000),  # 150,000 MGA: zero-decimal at Stripe, two decimals in ISO
    ("jpy", 150_000, 150_000),  # zero-decimal in both
    ("bif", 20_000, 20_000),
    ("kwd", 12_340, 12_340),  # 12.340 KWD: three decimals in both
    ("usd", 125_050, 125_050),
]


def _paid_invoice(sdk, customer: str, deal: str, currency: str, amount: int) -> tuple[str, str]:
    """The deal's invoice for one line, finalized and paid by card as a Stripe user does: (invoice, charge) ids."""
    params = {"customer": customer, "currency": currency, "collection_method": "send_invoice", "days_until_due": 30}
    params |= {"pending_invoice_items_behavior": "exclude", "metadata": {"hubspot_deal_id": deal}}
    invoice = sdk.v1.invoices.create(params=params)
    item = {"customer": customer, "invoice": invoice.id, "amount": amount, "currency": currency}
    sdk.v1.invoice_items.create(params=item)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    paid = sdk.v1.invoices.pay(invoice.id)
    assert paid.status == "paid" and paid.total == amount and paid.charge
    return invoice.id, str(paid.charge)


def test_stripe_amounts_reach_canonical_in_iso_minor_units(sandbox: Sandbox, warehouse_url: str) -> None:
    company = new_company(sandbox, f"Minor Units {uuid.uuid4().hex[:6]}")
    sdk = client(sandbox)
    link = {"hubspot_company_id": company}
    customer = sdk.v1.customers.create(
        params={"name": "Minor Units", "email": "billing@minor-units.example", "metadata": link}
    ).id
    deals = {c: won_deal(sandbox, company, Money(iso, c.upper()).major_text(), c.upper()) for c, _, iso in CASES}
    made = {currency: _paid_invoice(sdk, customer, deals[currency], currency, amount) for currency, amount, _ in CASES}
    # a króna fraction from before Stripe made ISK whole-only (5.50 ISK): ISO's ISK cannot hold it
    odd_deal = won_deal(sandbox, company, "5", "ISK")
    fraction = sdk.v1.invoices.create(
        params={
            "customer": customer,
            "currency": "isk",
            "pending_invoice_items_behavior": "exclude",
            "metadata": {"hubspot_deal_id": odd_deal},
        }
    )
    sdk.v1.invoice_items.create(params={"customer": customer, "invoice": fraction.id, "amount": 550, "currency": "isk"})
    sdk.v1.invoices.finalize_invoice(fraction.id)

    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, warehouse_url, instance)

    for currency, amount, iso_minor in CASES:
        invoice_id, charge_id = made[currency]
        (invoice,) = table(
            warehouse_url,
            "SELECT i.total, i.amount_due, i.amount_paid, i.amount_remaining, i.currency, i.customer_id, "
            "d.amount AS deal_amount FROM canonical.invoices i JOIN canonical.deals d ON d.deal_id = i.deal_id "
            "WHERE i.invoice_id = ?",
            [f"billing:{invoice_id}"],
        )
        assert invoice["deal_amount"] == iso_minor  # what the reconciliation of won deals compares
        assert invoice["currency"] == currency.upper()
        assert (invoice["total"], invoice["amount_due"], invoice["amount_paid"]) == (iso_minor,) * 3, (currency, amount)
        assert invoice["amount_remaining"] == 0 and invoice["customer_id"] == f"crm:{company}"
        (payment,) = table(
            warehouse_url,
            "SELECT amount, amount_refunded, currency, invoice_id FROM canonical.payments WHERE payment_id = ?",
            [f"billing:{charge_id}"],
        )
        assert (payment["amount"], payment["currency"]) == (iso_minor, currency.upper()), (currency, amount)
        assert payment["amount_refunded"] == 0 and payment["invoice_id"] == f"billing:{invoice_id}"

    # what the client paid, per currency, in ISO minor units (customer_360 sums canonical payments)
    (row,) = table(
        warehouse_url, "SELECT revenue_paid FROM canonical.customer_360 WHERE customer_id = ?", [f"crm:{company}"]
    )
    revenue = row["revenue_paid"] if isinstance(row["revenue_paid"], dict) else json.loads(row["revenue_paid"])
    assert {code: int(v) for code, v in revenue.items()} == {c.upper(): iso for c, _, iso in CASES}

    items = table(
        warehouse_url,
        "SELECT reason_code, detail FROM ops.review_queue WHERE system = 'billing' AND record_id = ?",
        [fraction.id],
    )
    assert [i["reason_code"] for i in items] == ["invalid_amount"]
    assert "Amount 550 in the source's minor units of ISK (2 decimals)" in items[0]["detail"]
    refused = table(warehouse_url, "SELECT * FROM canonical.invoices WHERE invoice_id = ?", [f"billing:{fraction.id}"])
    assert refused == []
