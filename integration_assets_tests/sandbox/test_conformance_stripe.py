"""The Stripe sandbox answers as Stripe's published OpenAPI document says: every route, success and error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_assets_tests.testing.conformance_cases import (
    Case,
    Outcome,
    describe,
    idle_waivers,
    run_cases,
    unjudged_routes,
)
from integration_assets_tests.testing.conformance_waivers import load_waivers
from integration_assets_tests.testing.sandbox import FREE_PORTS, sandbox_records
from integration_sandbox.credentials import STRIPE_API_KEY
from integration_sandbox.server import Sandbox

VENDOR = "stripe"
RATE_LIMITED = "stripe:\n  routes:\n    'POST /v1/customers': {rates: {429: 1.0}}\n"


def _last_id(body: Any) -> str:
    return body["data"][-1]["id"]


def _listing(resource: str, path: str) -> list[Case]:
    """A list, its second page, and (where Stripe has one) its search and the search's second page."""
    cases = [
        Case(
            f"{resource}-list", "GET", path, 200, params={"limit": 3}, then=lambda b: {f"{resource}_last": _last_id(b)}
        ),
        Case(
            f"{resource}-list-page-2", "GET", path, 200, params={"limit": 3, "starting_after": f"{{{resource}_last}}"}
        ),
    ]
    if resource in ("customers", "invoices", "charges"):
        query = {"customers": "created>0", "invoices": "total>=0", "charges": "amount>0"}[resource]
        cases += [
            Case(
                f"{resource}-search",
                "GET",
                f"{path}/search",
                200,
                params={"query": query, "limit": 3},
                then=lambda b: {f"{resource}_next_page": b["next_page"]},
            ),
            Case(
                f"{resource}-search-page-2",
                "GET",
                f"{path}/search",
                200,
                params={"query": query, "limit": 3, "page": f"{{{resource}_next_page}}"},
            ),
        ]
    return cases


CASES: list[Case] = [
    # customers, as the write-back flows make and find them
    *_listing("customers", "/v1/customers"),
    Case("customers-get", "GET", "/v1/customers/{customer}", 200),
    Case(
        "customers-create",
        "POST",
        "/v1/customers",
        200,
        form={"email": "conformance@example.test", "name": "Conformance Ltd", "metadata[hubspot_id]": "4242"},
        then=lambda b: {"new_customer": b["id"]},
    ),
    Case("customers-update", "POST", "/v1/customers/{new_customer}", 200, form={"name": "Conformance Group"}),
    # invoices: an item, a draft taking it, its edit, finalize and pay (what crm_to_billing writes)
    *_listing("invoices", "/v1/invoices"),
    Case("invoices-get", "GET", "/v1/invoices/{invoice}", 200),
    Case("invoices-lines", "GET", "/v1/invoices/{invoice}/lines", 200),
    Case(
        "invoiceitems-create",
        "POST",
        "/v1/invoiceitems",
        200,
        form={"customer": "{new_customer}", "amount": "120000", "currency": "usd", "description": "Conformance"},
        then=lambda b: {"new_item": b["id"]},
    ),
    Case("invoiceitems-get", "GET", "/v1/invoiceitems/{new_item}", 200),
    *_listing("invoiceitems", "/v1/invoiceitems"),
    Case(
        "invoices-create",
        "POST",
        "/v1/invoices",
        200,
        form={
            "customer": "{new_customer}",
            "pending_invoice_items_behavior": "include",
            "collection_method": "send_invoice",
            "days_until_due": "30",
        },
        then=lambda b: {"new_invoice": b["id"]},
    ),
    Case("invoices-update", "POST", "/v1/invoices/{new_invoice}", 200, form={"metadata[deal]": "4242"}),
    Case("invoices-finalize", "POST", "/v1/invoices/{new_invoice}/finalize", 200),
    Case("invoices-pay", "POST", "/v1/invoices/{new_invoice}/pay", 200, form={"paid_out_of_band": "true"}),
    Case("invoices-void", "POST", "/v1/invoices/{open_invoice}/void", 200),
    Case("invoices-mark-uncollectible", "POST", "/v1/invoices/{invoice_to_write_off}/mark_uncollectible", 200),
    Case(
        "invoices-create-draft-to-delete",
        "POST",
        "/v1/invoices",
        200,
        form={"customer": "{new_customer}", "collection_method": "send_invoice", "days_until_due": "30"},
        then=lambda b: {"draft_to_delete": b["id"]},
    ),
    Case("invoices-delete-draft", "DELETE", "/v1/invoices/{draft_to_delete}", 200),
    Case(
        "invoices-pay-by-card",
        "POST",
        "/v1/invoices/{invoice_to_pay}/pay",
        200,
        then=lambda b: {"card_charge": b["charge"]},
    ),
    Case("charges-get-card-payment", "GET", "/v1/charges/{card_charge}", 200),
    # charges and events
    *_listing("charges", "/v1/charges"),
    Case("charges-get", "GET", "/v1/charges/{charge}", 200),
    Case("charges-update", "POST", "/v1/charges/{charge}", 200, form={"description": "Conformance payment"}),
    *_listing("events", "/v1/events"),
    Case("events-get", "GET", "/v1/events/{events_last}", 200),
    Case("customers-delete", "DELETE", "/v1/customers/{customer_to_delete}", 200),
    # documented error answers
    Case("customers-get-unknown", "GET", "/v1/customers/cus_unknown", 404),
    Case("invoices-get-unknown", "GET", "/v1/invoices/in_unknown", 404),
    Case("charges-get-unknown", "GET", "/v1/charges/ch_unknown", 404),
    Case("customers-list-bad-limit", "GET", "/v1/customers", 400, params={"limit": "many"}),
    Case("invoices-create-no-customer", "POST", "/v1/invoices", 400, form={"description": "no customer"}),
    Case("invoices-pay-paid", "POST", "/v1/invoices/{new_invoice}/pay", 400),
    Case("invoices-delete-finalized", "DELETE", "/v1/invoices/{new_invoice}", 400),
    Case("invoices-delete-unknown", "DELETE", "/v1/invoices/in_unknown", 404),
    Case("invoices-mark-uncollectible-twice", "POST", "/v1/invoices/{invoice_to_write_off}/mark_uncollectible", 400),
    Case("invoices-mark-uncollectible-unknown", "POST", "/v1/invoices/in_unknown/mark_uncollectible", 404),
    Case("invoices-delete-bad-credentials", "DELETE", "/v1/invoices/{new_invoice}", 401, auth="bad"),
    Case("customers-search-bad-query", "GET", "/v1/customers/search", 400, params={"query": "name~'x'"}),
    Case("charges-list-bad-credentials", "GET", "/v1/charges", 401, auth="bad"),
    Case("invoices-list-no-credentials", "GET", "/v1/invoices", 401, auth="none"),
    Case("customers-create-rate-limited", "POST", "/v1/customers", 429, form={"name": "Too fast"}, faults=RATE_LIMITED),
]


def _credentials(kind: str) -> dict[str, Any]:
    token = {"good": STRIPE_API_KEY, "bad": "sk_test_unknown"}.get(kind)
    return {"headers": {"Authorization": f"Bearer {token}"} if token else {}}


@pytest.fixture(scope="module")
def outcomes(dataset: Path) -> Iterator[tuple[Sandbox, dict[str, Outcome]]]:
    """Every case, once, against one sandbox."""
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox:
        customers = [c for c in sandbox_records(sandbox, VENDOR, "customers") if not c.get("deleted")]
        invoices = sandbox_records(sandbox, VENDOR, "invoices")
        charges = sandbox_records(sandbox, VENDOR, "charges")
        open_invoices = [i["id"] for i in invoices if i["status"] == "open" and i.get("amount_remaining")]
        values = {
            "customer": customers[0]["id"],
            "customer_to_delete": customers[-1]["id"],
            "invoice": next(i["id"] for i in invoices if i["status"] == "paid"),
            "open_invoice": open_invoices[0],
            "invoice_to_pay": open_invoices[1],
            "invoice_to_write_off": open_invoices[2],
            "charge": charges[0]["id"],
        }
        yield sandbox, run_cases(sandbox, VENDOR, CASES, values, _credentials, load_waivers())


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_answer_conforms_to_the_published_document(outcomes, name: str) -> None:
    _, found = outcomes
    problem = describe(found[name])
    assert not problem, problem


def test_every_served_route_is_exercised_or_waived(outcomes) -> None:
    assert unjudged_routes(*outcomes, VENDOR) == []


def test_every_waiver_still_excuses_a_violation(outcomes) -> None:
    assert idle_waivers(*outcomes, VENDOR) == []
