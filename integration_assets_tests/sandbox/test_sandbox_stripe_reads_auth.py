"""The Stripe sandbox against the official SDK: lists, cursors, retrieve and search, then keys and rate limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import stripe

from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_assets_tests.testing.stripe import KEY, api, client
from integration_sandbox.server import Sandbox

TYPES = ("customers", "invoices", "charges")
SERVICE = {"customers": "customers", "invoices": "invoices", "charges": "charges"}


def newest_first(records: list[dict]) -> list[dict]:
    """The listing order as an oracle: created descending (ties: both orders accepted by the checks)."""
    return sorted(records, key=lambda r: -r["created"])


def live(records: list[dict]) -> list[dict]:
    return [r for r in records if not r.get("deleted")]


# -- reading -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("object_type", TYPES)
def test_sdk_auto_pagination_lists_every_record_newest_first(sandbox: Sandbox, dataset: Path, object_type: str) -> None:
    service = getattr(client(sandbox).v1, SERVICE[object_type])
    listed = [obj.to_dict() for obj in service.list(params={"limit": 100}).auto_paging_iter()]
    stored = live(sandbox_records(sandbox, "stripe", object_type))
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert len(listed) == manifest["counts"][f"stripe/{object_type}"] == len(stored)
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in stored)
    created = [r["created"] for r in listed]
    assert created == sorted(created, reverse=True)
    assert listed[0] == next(r for r in stored if r["id"] == listed[0]["id"])


def test_pages_cursors_both_ways_and_limits(sandbox: Sandbox) -> None:
    first = api(sandbox, "GET", "/v1/invoices")
    assert first.status_code == 200 and first.headers["Request-Id"].startswith("req_")
    body = first.json()
    assert (body["object"], body["url"], body["has_more"], len(body["data"])) == (
        "list",
        "/v1/invoices",
        True,
        10,
    )
    everything = [r["id"] for r in client(sandbox).v1.invoices.list(params={"limit": 7}).auto_paging_iter()]
    assert everything[:10] == [r["id"] for r in body["data"]]
    # ending_before walks back: the 5 records just before the cursor, in listing order.
    back = api(sandbox, "GET", "/v1/invoices", params={"ending_before": everything[12], "limit": 5}).json()
    assert [r["id"] for r in back["data"]] == everything[7:12] and back["has_more"] is True
    sdk_back = client(sandbox).v1.invoices.list(params={"ending_before": everything[3], "limit": 2})
    assert [r.id for r in sdk_back.auto_paging_iter()] == everything[:3][::-1]
    last = api(sandbox, "GET", "/v1/invoices", params={"starting_after": everything[-3], "limit": 5}).json()
    assert [r["id"] for r in last["data"]] == everything[-2:] and last["has_more"] is False
    for value, message in (("0", "greater than or equal to 1"), ("101", "less than or equal to 100")):
        refused = api(sandbox, "GET", "/v1/invoices", params={"limit": value})
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == "limit" and message in error["message"]
        assert error["type"] == "invalid_request_error" and refused.headers["Stripe-Should-Retry"] == "false"
    unknown = api(sandbox, "GET", "/v1/customers", params={"starting_after": "cus_doesnotexist"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_doesnotexist'",
        "param": "starting_after",
        "type": "invalid_request_error",
    }
    # Stripe has no `updated` filter: a connector that sends one is told so.
    updated = api(sandbox, "GET", "/v1/customers", params={"updated[gt]": "1"})
    assert updated.status_code == 400 and updated.json()["error"]["message"] == "Received unknown parameter: updated"


def test_created_ranges_and_filters_match_an_oracle(sandbox: Sandbox) -> None:
    invoices = sandbox_records(sandbox, "stripe", "invoices")
    moments = sorted(r["created"] for r in invoices)
    low, high = moments[len(moments) // 4], moments[3 * len(moments) // 4]
    sdk = client(sandbox)
    for created, keep in (
        ({"gte": low, "lt": high}, lambda c: low <= c < high),
        ({"gt": low, "lte": high}, lambda c: low < c <= high),
        (high, lambda c: c == high),
    ):
        listed = [r.id for r in sdk.v1.invoices.list(params={"created": created, "limit": 3}).auto_paging_iter()]
        assert sorted(listed) == sorted(r["id"] for r in invoices if keep(r["created"]))
    customer = invoices[0]["customer"]
    paid_of_customer = {r["id"] for r in invoices if r["customer"] == customer and r["status"] == "paid"}
    listed = sdk.v1.invoices.list(params={"customer": customer, "status": "paid", "limit": 100})
    assert {r.id for r in listed.auto_paging_iter()} == paid_of_customer
    bad_status = api(sandbox, "GET", "/v1/invoices", params={"status": "overdue"})
    assert bad_status.status_code == 400 and bad_status.json()["error"]["param"] == "status"
    charges = sandbox_records(sandbox, "stripe", "charges")
    by_intent = sdk.v1.charges.list(params={"payment_intent": charges[0]["payment_intent"]})
    assert [r.id for r in by_intent.data] == [charges[0]["id"]]
    by_customer = sdk.v1.charges.list(params={"customer": charges[0]["customer"], "limit": 100})
    assert {r.id for r in by_customer.data} == {c["id"] for c in charges if c["customer"] == charges[0]["customer"]}
    customers = sandbox_records(sandbox, "stripe", "customers")
    email = customers[5]["email"]
    by_email = sdk.v1.customers.list(params={"email": email})
    assert {r.id for r in by_email.data} == {c["id"] for c in customers if c["email"] == email}
    assert sdk.v1.customers.list(params={"email": email.upper()}).data == []  # case-sensitive, as Stripe


def test_retrieve_expand_and_stripe_404(sandbox: Sandbox) -> None:
    invoice = sandbox_records(sandbox, "stripe", "invoices")[0]
    sdk = client(sandbox)
    fetched = sdk.v1.invoices.retrieve(invoice["id"], params={"expand": ["customer"]})
    assert fetched.customer.id == invoice["customer"] and fetched.customer.object == "customer"
    listed = sdk.v1.invoices.list(params={"limit": 3, "expand": ["data.customer"]})
    assert all(isinstance(r.customer, stripe.Customer) for r in listed.data)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.invoices.retrieve("in_missing")
    error = caught.value
    assert error.http_status == 404 and error.code == "resource_missing" and error.param == "id"
    assert error.json_body["error"]["message"] == "No such invoice: 'in_missing'"
    assert error.request_id.startswith("req_") and error.headers["Stripe-Should-Retry"] == "false"
    unknown_path = api(sandbox, "GET", "/v1/nothing_here")
    assert unknown_path.status_code == 404
    assert unknown_path.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here)")


def test_search_by_metadata_with_paging_and_syntax_errors(sandbox: Sandbox) -> None:
    invoices = sandbox_records(sandbox, "stripe", "invoices")
    deal_id = invoices[3]["metadata"]["hubspot_deal_id"]
    sdk = client(sandbox)
    found = sdk.v1.invoices.search(params={"query": f"metadata['hubspot_deal_id']:'{deal_id}'"})
    assert found.object == "search_result" and found.url == "/v1/invoices/search"
    assert [r.id for r in found.data] == [r["id"] for r in invoices if r["metadata"]["hubspot_deal_id"] == deal_id]
    cutoff = sorted(r["created"] for r in invoices)[len(invoices) // 2]
    query = f'status:"paid" AND created>{cutoff}'
    pages = sdk.v1.invoices.search(params={"query": query, "limit": 4})
    assert pages.has_more is True and pages.next_page
    paid_recent = {r["id"] for r in invoices if r["status"] == "paid" and r["created"] > cutoff}
    assert {r.id for r in pages.auto_paging_iter()} == paid_recent
    customers = sandbox_records(sandbox, "stripe", "customers")
    company = next(c for c in customers if c["metadata"].get("hubspot_company_id"))["metadata"]["hubspot_company_id"]
    by_company = sdk.v1.customers.search(params={"query": f'metadata["hubspot_company_id"]:"{company}"'})
    assert [c.id for c in by_company.data] == [
        c["id"] for c in customers if c["metadata"].get("hubspot_company_id") == company
    ]
    for query, fragment in (
        ("updated>5", "unsupported search field"),
        ("status:'paid' AND", "unable to parse"),
        ("status:'paid' OR currency:'usd' AND total>1", "cannot combine"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            sdk.v1.invoices.search(params={"query": query})
        assert caught.value.param == "query" and fragment in caught.value.user_message


# -- credentials and limits ----------------------------------------------------------------------------
def test_unknown_key_is_authentication_error_and_basic_auth_works(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.AuthenticationError) as caught:
        client(sandbox, "sk_test_wrongkey1234abcd").v1.customers.list()
    error = caught.value
    assert error.http_status == 401 and error.request_id.startswith("req_")
    assert error.json_body == {
        "error": {
            "message": "Invalid API Key provided: sk_test_************abcd",
            "type": "invalid_request_error",
        }
    }
    assert error.headers["Stripe-Should-Retry"] == "false"
    basic = requests.get(sandbox.url("stripe") + "/v1/customers", auth=(KEY, ""), timeout=10)
    assert basic.status_code == 200 and basic.json()["object"] == "list"
    missing = requests.get(sandbox.url("stripe") + "/v1/customers", timeout=10)
    assert missing.status_code == 401 and "You did not provide an API key" in missing.json()["error"]["message"]


def test_expired_key_is_authentication_error_api_key_expired(sandbox: Sandbox) -> None:
    put_faults(sandbox, "stripe:\n  credentials: [{token: sk_test_expiredkey9876, expires_in_s: 0}]\n")
    with pytest.raises(stripe.AuthenticationError) as caught:
        client(sandbox, "sk_test_expiredkey9876").v1.invoices.list()
    error = caught.value.json_body["error"]
    assert caught.value.http_status == 401 and error["code"] == "api_key_expired"
    assert error["message"] == "Expired API Key provided: sk_test_**********9876"
    assert client(sandbox).v1.invoices.list().object == "list"  # the default key is not touched


def test_restricted_key_is_permission_error_naming_the_permission(sandbox: Sandbox) -> None:
    put_faults(
        sandbox,
        "stripe:\n  credentials:\n"
        "    - {token: rk_test_customerreader, scopes: ['customers:read']}\n"
        "    - {token: rk_test_billingwriter, scopes: ['invoices:write', 'rak_customer_write']}\n",
    )
    reader = client(sandbox, "rk_test_customerreader")
    assert len(reader.v1.customers.list(params={"limit": 3}).data) == 3
    for call, permission in (
        (lambda: reader.v1.invoices.list(), "rak_invoice_read"),
        (lambda: reader.v1.customers.create(params={"email": "x@example.com"}), "rak_customer_write"),
        (lambda: reader.v1.events.list(), "rak_event_read"),
    ):
        with pytest.raises(stripe.PermissionError) as caught:
            call()
        assert caught.value.http_status == 403
        message = caught.value.json_body["error"]["message"]
        assert message.startswith("The provided key 'rk_test_")
        assert f"Having the '{permission}' permission would allow this request to continue." in message
    writer = client(sandbox, "rk_test_billingwriter")
    customer = writer.v1.customers.create(params={"email": "writer@example.com"})  # write implies read:
    assert writer.v1.invoices.list(params={"customer": customer.id}).data == []
    with pytest.raises(stripe.PermissionError):
        writer.v1.charges.list()
    assert customer.id in {c["id"] for c in sandbox_records(sandbox, "stripe", "customers")}


def test_rate_limit_is_rate_limit_error_with_should_retry(sandbox: Sandbox) -> None:
    put_faults(sandbox, "stripe:\n  rate_limit: {requests: 3, per_seconds: 60}\n")
    sdk = client(sandbox)
    for _ in range(3):
        sdk.v1.customers.list(params={"limit": 1})
    with pytest.raises(stripe.RateLimitError) as caught:
        sdk.v1.customers.list(params={"limit": 1})
    error = caught.value
    assert error.http_status == 429 and error.headers["Stripe-Should-Retry"] == "true"
    assert error.json_body["error"]["code"] == "rate_limit"
    assert error.json_body["error"]["message"].startswith("Request rate limit exceeded.")
    # A POST refused by the limiter leaves its idempotency key free for the retry.
    limited = api(sandbox, "POST", "/v1/customers", headers={"Idempotency-Key": "k-limited"}, data={"name": "A"})
    assert limited.status_code == 429 and sandbox.apps["stripe"].idempotency_keys_in_flight() == []
