"""Stripe's invoices and charges carry the fields Stripe's document requires, with values that agree.

Read over HTTP, as a connector reads them: generated records and records made by each write. An invoice's
lines sum to its amounts, its periods fall before its creation, its attempts match its status, and the card
a charge was paid with had not expired when it was charged.
"""

from __future__ import annotations

import time
from collections import defaultdict

from integration_assets_tests.testing.stripe import api
from integration_sandbox.server import Sandbox

# The `required` lists of the `invoice` and `charge` schemas in Stripe's OpenAPI document (2023-08-16).
INVOICE_REQUIRED = frozenset(
    {
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "amount_shipping",
        "attempt_count",
        "attempted",
        "automatic_tax",
        "collection_method",
        "created",
        "currency",
        "default_tax_rates",
        "lines",
        "livemode",
        "object",
        "paid",
        "paid_out_of_band",
        "payment_settings",
        "period_end",
        "period_start",
        "post_payment_credit_notes_amount",
        "pre_payment_credit_notes_amount",
        "starting_balance",
        "status_transitions",
        "subtotal",
        "total",
        "total_tax_amounts",
    }
)
LINE_REQUIRED = frozenset(
    {"amount", "currency", "discountable", "id", "livemode", "metadata", "object", "period", "proration", "type"}
)
CHARGE_REQUIRED = frozenset(
    {
        "amount",
        "amount_captured",
        "amount_refunded",
        "billing_details",
        "captured",
        "created",
        "currency",
        "disputed",
        "id",
        "livemode",
        "metadata",
        "object",
        "paid",
        "refunded",
        "status",
    }
)
YEAR_S = 365 * 86_400


def listed(sandbox: Sandbox, object_type: str, **params: object) -> list[dict]:
    """Every record `/v1/<object_type>` lists, page by page."""
    found: list[dict] = []
    query: dict[str, object] = {"limit": 100, **params}
    while True:
        page = api(sandbox, "GET", f"/v1/{object_type}", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["data"]
        if not body["has_more"]:
            return found
        query["starting_after"] = body["data"][-1]["id"]


def ok(sandbox: Sandbox, method: str, path: str, **data: object) -> dict:
    answer = api(sandbox, method, path, data=data or None)
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_documented_invoice(invoice: dict) -> None:
    """Required fields present; lines a Stripe list summing to the amounts; periods and attempts consistent."""
    assert invoice.keys() >= INVOICE_REQUIRED, INVOICE_REQUIRED - invoice.keys()
    lines = invoice["lines"]
    assert lines["object"] == "list" and lines["has_more"] is False
    assert lines["url"] == f"/v1/invoices/{invoice['id']}/lines" and lines["total_count"] == len(lines["data"])
    assert sum(line["amount"] for line in lines["data"]) == invoice["subtotal"] == invoice["total"]
    assert invoice["amount_due"] == max(invoice["total"], 0)  # a negative total is a credit, nothing to collect
    for line in lines["data"]:
        assert line.keys() >= LINE_REQUIRED, LINE_REQUIRED - line.keys()
        assert (line["object"], line["type"], line["currency"]) == ("line_item", "invoiceitem", invoice["currency"])
        assert line["id"].startswith("il_") and line["invoice"] == invoice["id"]
        assert isinstance(line["amount"], int) and line["period"]["start"] <= line["period"]["end"]
    assert invoice["period_start"] <= invoice["period_end"] <= invoice["created"]
    for name in ("amount_shipping", "starting_balance", "pre_payment_credit_notes_amount"):
        assert invoice[name] == 0 and isinstance(invoice[name], int)
    assert invoice["post_payment_credit_notes_amount"] == 0
    assert invoice["automatic_tax"] == {"enabled": False, "status": None}
    assert invoice["default_tax_rates"] == [] and invoice["total_tax_amounts"] == []
    assert set(invoice["payment_settings"]) == {"default_mandate", "payment_method_options", "payment_method_types"}
    assert isinstance(invoice["attempt_count"], int)
    assert invoice["attempted"] is (invoice["attempt_count"] > 0)
    collected = invoice["amount_paid"] > 0 and not invoice["paid_out_of_band"]
    if invoice["status"] in ("paid", "open") and collected:
        assert invoice["attempt_count"] >= 1, invoice["id"]  # money arrived through a payment attempt
    if invoice["status"] == "draft":
        assert invoice["attempt_count"] == 0


def assert_card_unexpired(charge: dict) -> tuple[str, str]:
    """The card's expiry month is after the charge's; returns the card (brand, last4)."""
    assert charge.keys() >= CHARGE_REQUIRED, CHARGE_REQUIRED - charge.keys()
    assert charge["disputed"] is False
    details = charge["payment_method_details"]
    assert details["type"] == "card"
    card = details["card"]
    charged = time.gmtime(charge["created"])
    assert 1 <= card["exp_month"] <= 12
    assert (card["exp_year"], card["exp_month"]) > (charged.tm_year, charged.tm_mon), charge["id"]
    assert len(card["last4"]) == 4 and card["last4"].isdigit() and card["brand"] == card["network"]
    return card["brand"], card["last4"]


def test_generated_invoices_and_charges_carry_what_stripe_documents(sandbox: Sandbox) -> None:
    invoices = listed(sandbox, "invoices")
    assert len(invoices) > 20
    for invoice in invoices:
        assert_documented_invoice(invoice)
        assert invoice["paid_out_of_band"] is False
        # a line is added when the deal closes, before the invoice: inside the invoice's period
        for line in invoice["lines"]["data"]:
            assert invoice["period_start"] <= line["period"]["start"] <= invoice["period_end"]
    assert {len(i["lines"]["data"]) for i in invoices} == {1, 2}  # some invoices carry a setup fee
    first = invoices[0]
    served = ok(sandbox, "GET", f"/v1/invoices/{first['id']}/lines")
    assert served["data"] == first["lines"]["data"]

    charges = listed(sandbox, "charges")
    by_invoice: dict[str, int] = defaultdict(int)
    cards: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for charge in charges:
        cards[charge["customer"]].add(assert_card_unexpired(charge))
        by_invoice[charge["invoice"]] += 1
    assert all(len(found) == 1 for found in cards.values())  # a customer pays with one card
    for invoice in invoices:  # each charge is an attempt that succeeded
        assert invoice["attempt_count"] == by_invoice.get(invoice["id"], 0)


def test_every_write_keeps_the_documented_fields(sandbox: Sandbox) -> None:
    customer = ok(sandbox, "POST", "/v1/customers", email="fields@example.com", name="Fields Ltd")
    pending = ok(
        sandbox, "POST", "/v1/invoiceitems", customer=customer["id"], amount=1_500, currency="usd", description="A"
    )
    invoice = ok(sandbox, "POST", "/v1/invoices", customer=customer["id"], pending_invoice_items_behavior="include")
    assert_documented_invoice(invoice)
    assert invoice["period_start"] == pending["date"] and invoice["lines"]["data"][0]["invoice_item"] == pending["id"]
    assert invoice["total"] == 1_500

    ok(sandbox, "POST", "/v1/invoiceitems", customer=customer["id"], invoice=invoice["id"], unit_amount=700, quantity=3)
    ok(sandbox, "POST", "/v1/invoiceitems", customer=customer["id"], invoice=invoice["id"], amount=-200)
    drafted = ok(sandbox, "GET", f"/v1/invoices/{invoice['id']}")
    assert_documented_invoice(drafted)
    assert [line["amount"] for line in drafted["lines"]["data"]] == [1_500, 2_100, -200]
    assert (
        drafted["lines"]["data"][1]["quantity"] == 3
        and drafted["lines"]["data"][1]["unit_amount_excluding_tax"] == "700"
    )
    assert (drafted["total"], drafted["amount_due"], drafted["attempt_count"]) == (3_400, 3_400, 0)
    assert_documented_invoice(ok(sandbox, "POST", f"/v1/invoices/{invoice['id']}", description="Edited"))

    finalized = ok(sandbox, "POST", f"/v1/invoices/{invoice['id']}/finalize")
    assert_documented_invoice(finalized)
    assert (finalized["status"], finalized["attempt_count"], finalized["attempted"]) == ("open", 0, False)
    paid = ok(sandbox, "POST", f"/v1/invoices/{invoice['id']}/pay")
    assert_documented_invoice(paid)
    assert (paid["status"], paid["attempt_count"], paid["attempted"], paid["paid_out_of_band"]) == (
        "paid",
        1,
        True,
        False,
    )
    charge = ok(sandbox, "GET", f"/v1/charges/{paid['charge']}")
    assert charge["amount"] == sum(line["amount"] for line in paid["lines"]["data"])
    card = assert_card_unexpired(charge)

    def finalized_of(amount: int) -> dict:
        draft = ok(sandbox, "POST", "/v1/invoices", customer=customer["id"], currency="usd")
        ok(sandbox, "POST", "/v1/invoiceitems", customer=customer["id"], invoice=draft["id"], amount=amount)
        return ok(sandbox, "POST", f"/v1/invoices/{draft['id']}/finalize")

    voided = ok(sandbox, "POST", f"/v1/invoices/{finalized_of(700)['id']}/void")
    uncollectible = ok(sandbox, "POST", f"/v1/invoices/{finalized_of(900)['id']}/mark_uncollectible")
    by_hand = ok(sandbox, "POST", f"/v1/invoices/{finalized_of(500)['id']}/pay", paid_out_of_band="true")
    zero = ok(
        sandbox, "POST", f"/v1/invoices/{ok(sandbox, 'POST', '/v1/invoices', customer=customer['id'])['id']}/finalize"
    )
    for written in (voided, uncollectible, by_hand, zero):
        assert_documented_invoice(written)
        assert written["attempt_count"] == 0
    assert (by_hand["status"], by_hand["paid_out_of_band"], by_hand["amount_paid"]) == ("paid", True, 500)
    assert (zero["status"], zero["lines"]["total_count"], zero["total"]) == ("paid", 0, 0)
    collected = ok(sandbox, "POST", f"/v1/invoices/{uncollectible['id']}/pay")
    assert_documented_invoice(collected)
    assert collected["attempt_count"] == 1
    assert assert_card_unexpired(ok(sandbox, "GET", f"/v1/charges/{collected['charge']}")) == card

    # every snapshot an event carried conforms too: a connector reading events reads these
    for event in listed(sandbox, "events", **{"types[]": "invoice.*"}):
        snapshot = event["data"]["object"]
        if snapshot["customer"] == customer["id"] and not snapshot.get("deleted"):
            assert_documented_invoice(snapshot)


def test_paying_a_generated_invoice_years_later_uses_an_unexpired_card(sandbox: Sandbox) -> None:
    """The card is reissued when it expires, so a charge long after the dataset is not on an expired card."""
    opened = next(i for i in listed(sandbox, "invoices", status="open") if i["currency"] != "xyz")
    earlier = listed(sandbox, "charges", customer=opened["customer"])
    sandbox.apps["stripe"].clock = lambda: time.time() + 6 * YEAR_S
    paid = ok(sandbox, "POST", f"/v1/invoices/{opened['id']}/pay")
    assert_documented_invoice(paid)
    assert paid["attempt_count"] == opened["attempt_count"] + 1
    charge = ok(sandbox, "GET", f"/v1/charges/{paid['charge']}")
    assert charge["created"] > time.time() + 5 * YEAR_S
    card = assert_card_unexpired(charge)
    assert all(assert_card_unexpired(c) == card for c in earlier)  # same card, a later expiry
