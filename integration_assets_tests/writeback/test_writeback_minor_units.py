"""Flow 1 (CRM → billing) in currencies whose minor unit Stripe defines apart from ISO-4217: the invoice line
is sent in Stripe's units (5,000 ISK is 500000 at Stripe, 150,000 MGA is 150000), an amount Stripe's unit cannot
hold goes to review instead of being rounded, and the invoices synced back equal their deals in canonical."""

from __future__ import annotations

import uuid
from pathlib import Path

from dagster import DagsterInstance

from integration_assets_tests.testing.sandbox import sandbox_records
from integration_assets_tests.testing.writeback import new_company, run_flows, sync, table, value, won_deal
from integration_sandbox.server import Sandbox

FLOW = "crm_to_billing"

# the deal's amount as HubSpot states it (major units), its currency, the invoice line Stripe must receive
CASES = [
    ("5000", "ISK", 500_000),
    ("15000", "UGX", 1_500_000),
    ("150000.00", "MGA", 150_000),
    ("150000", "JPY", 150_000),
    ("20000", "BIF", 20_000),
    ("12.340", "KWD", 12_340),
    ("1250.50", "USD", 125_050),
]


def test_invoices_are_written_in_stripes_minor_units(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    # a client per currency: a client's won deals in several currencies are not added up, so it waits in review
    companies = [new_company(sandbox, f"Minor Units {currency} {uuid.uuid4().hex[:6]}") for _, currency, _ in CASES]
    deals = {
        won_deal(sandbox, company, amount, currency): (currency, sent)
        for company, (amount, currency, sent) in zip(companies, CASES, strict=True)
    }
    odd_client = new_company(sandbox, f"Minor Units odd MGA {uuid.uuid4().hex[:6]}")
    unholdable = won_deal(sandbox, odd_client, "1500.50", "MGA")  # Stripe's MGA has no decimals: no exact line
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        _, metadata = run_flows(sandbox, url, instance, FLOW)
        sync(sandbox, url, instance)  # the invoices made, read back from Stripe

    invoices = {
        i["metadata"]["hubspot_deal_id"]: i
        for i in sandbox_records(sandbox, "stripe", "invoices")
        if (i.get("metadata") or {}).get("hubspot_deal_id") in {*deals, unholdable}
    }
    assert set(invoices) == set(deals)  # the unholdable amount was never sent
    for deal, (currency, sent) in deals.items():
        invoice = invoices[deal]
        assert (invoice["currency"], invoice["total"]) == (currency.lower(), sent), deal
        (line,) = invoice["lines"]["data"]
        assert line["amount"] == sent

    assert value(metadata[FLOW], "invalid") == 1  # refused by the flow's contract, before anything was sent
    (item,) = table(url, "SELECT * FROM ops.review_queue WHERE record_id = ?", [unholdable])
    assert (item["system"], item["object_type"]) == ("crm", "deals")
    assert "stripe_amount: an amount Stripe's minor units of its currency hold exactly (no rounding)" in item["detail"]

    # read back, each invoice bills its deal's amount exactly: the same ISO minor units on both sides
    rows = table(
        url,
        "SELECT d.deal_id, d.amount, d.currency, i.total, i.currency AS invoice_currency FROM canonical.deals d "
        "JOIN canonical.invoices i ON i.deal_id = d.deal_id",
    )
    rows = [r for r in rows if r["deal_id"] in {f"crm:{d}" for d in deals}]
    assert {r["deal_id"] for r in rows} == {f"crm:{d}" for d in deals}
    for row in rows:
        assert (row["total"], row["invoice_currency"]) == (row["amount"], row["currency"]), row
