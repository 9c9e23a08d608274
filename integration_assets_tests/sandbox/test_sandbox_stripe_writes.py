"""The Stripe sandbox's writes against the official SDK: idempotency keys, invoices, customers and events."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import stripe

from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_assets_tests.testing.stripe import api, client
from integration_sandbox.server import Sandbox


def events(sandbox: Sandbox, **params) -> list[dict]:
    """Every event `/v1/events` lists for `params`, following `starting_after` to the end."""
    found: list[dict] = []
    query = {"limit": 100, **params}
    while True:
        page = api(sandbox, "GET", "/v1/events", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["data"]
        if not body["has_more"]:
            return found
        query["starting_after"] = body["data"][-1]["id"]


# -- idempotency ----------------------------------------------------------------------------------------
def test_replay_returns_the_same_object_and_creates_nothing(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    params = {"email": "replay@example.com", "metadata": {"hubspot_company_id": "777"}}
    first = sdk.v1.customers.create(params=params, options={"idempotency_key": "create-777"})
    again = sdk.v1.customers.create(params=params, options={"idempotency_key": "create-777"})
    assert again.id == first.id and again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    assert again.last_response.request_id != first.last_response.request_id
    customers = sandbox_records(sandbox, "stripe", "customers")
    assert [c["id"] for c in customers if c.get("email") == "replay@example.com"] == [first.id]
    created = [e for e in events(sandbox, type="customer.created") if e["data"]["object"]["id"] == first.id]
    assert len(created) == 1 and created[0]["request"] == {
        "id": first.last_response.request_id,
        "idempotency_key": "create-777",
    }
    # A handler's own error is saved too: the replay repeats it even after the state changed.
    invoice = sdk.v1.invoices.create(params={"customer": first.id})
    opened = api(sandbox, "POST", f"/v1/invoices/{invoice.id}/void", headers={"Idempotency-Key": "void-1"})
    assert opened.status_code == 400
    sdk.v1.invoices.finalize_invoice(invoice.id)
    replayed = api(sandbox, "POST", f"/v1/invoices/{invoice.id}/void", headers={"Idempotency-Key": "void-1"})
    assert (replayed.status_code, replayed.json()) == (400, opened.json())
    assert replayed.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_other_parameters_is_idempotency_error(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    sdk.v1.customers.create(params={"name": "First"}, options={"idempotency_key": "reused-key"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        sdk.v1.customers.create(params={"name": "Second"}, options={"idempotency_key": "reused-key"})
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"] == {
        "message": "Keys for idempotent requests can only be used with the same parameters they were first "
        "used with. Try using a key other than 'reused-key' if you meant to execute a different request.",
        "type": "idempotency_error",
    }
    other_path = api(sandbox, "POST", "/v1/invoices", headers={"Idempotency-Key": "reused-key"}, data={"name": "First"})
    assert other_path.status_code == 400 and other_path.json()["error"]["type"] == "idempotency_error"
    assert [c["name"] for c in sandbox_records(sandbox, "stripe", "customers") if c.get("name") == "Second"] == []


def test_validation_failures_are_not_saved_for_the_key(sandbox: Sandbox) -> None:
    """Stripe saves a result only once the endpoint runs: a request that failed validation may be fixed."""
    sdk = client(sandbox)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.customers.create(params={"email": "not-an-email"}, options={"idempotency_key": "fix-me"})
    assert caught.value.param == "email" and caught.value.user_message == "Invalid email address: not-an-email"
    fixed = sdk.v1.customers.create(params={"email": "fixed@example.com"}, options={"idempotency_key": "fix-me"})
    assert fixed.email == "fixed@example.com" and "Idempotent-Replayed" not in fixed.last_response.headers
    too_long = api(sandbox, "POST", "/v1/customers", headers={"Idempotency-Key": "k" * 256}, data={"name": "A"})
    assert too_long.status_code == 400 and "255" in too_long.json()["error"]["message"]


def test_sdk_retries_after_dropped_responses_create_one_customer(sandbox: Sandbox) -> None:
    """The write commits, the response is lost, the SDK retries with its key: replayed, nothing doubles."""
    put_faults(sandbox, "stripe:\n  writes: {apply_then_drop: 1.0}\n")
    params = {"email": "dropped@example.com"}
    with pytest.raises(stripe.APIConnectionError):
        client(sandbox, retries=2).v1.customers.create(params=params, options={"idempotency_key": "drop-1"})
    stats = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=10).json()["stripe"]
    assert stats["fault:apply_then_drop"] == 3
    stored = [c for c in sandbox_records(sandbox, "stripe", "customers") if c.get("email") == params["email"]]
    assert len(stored) == 1
    put_faults(sandbox, "seed: 0\n")
    answer = client(sandbox).v1.customers.create(params=params, options={"idempotency_key": "drop-1"})
    assert answer.id == stored[0]["id"] and answer.last_response.headers["Idempotent-Replayed"] == "true"


def test_keys_expire_after_24_hours(sandbox: Sandbox) -> None:
    app, sdk = sandbox.apps["stripe"], client(sandbox)
    first = sdk.v1.customers.create(params={"name": "Day one"}, options={"idempotency_key": "daily"})
    app.clock = lambda: time.time() + 24 * 3600 + 5
    second = sdk.v1.customers.create(params={"name": "Day one"}, options={"idempotency_key": "daily"})
    assert second.id != first.id and "Idempotent-Replayed" not in second.last_response.headers


def test_concurrent_use_of_a_key_is_409_and_the_sdk_retry_gets_the_replay(sandbox: Sandbox) -> None:
    """A slow first request (held behind the app lock) keeps its key in flight; a second user gets 409."""
    app = sandbox.apps["stripe"]
    held, release = threading.Event(), threading.Event()

    def hold_the_app() -> None:
        with app.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_app)
    holder.start()
    assert held.wait(5)
    results: dict[str, object] = {}
    params = {"email": "once@example.com"}

    def first_request() -> None:
        results["first"] = client(sandbox).v1.customers.create(params=params, options={"idempotency_key": "twice"})

    first = threading.Thread(target=first_request)
    first.start()
    deadline = time.monotonic() + 5
    while "twice" not in app.idempotency_keys_in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(stripe.APIError) as caught:
        client(sandbox, retries=0).v1.customers.create(params=params, options={"idempotency_key": "twice"})
    error = caught.value
    assert error.http_status == 409 and error.headers["Stripe-Should-Retry"] == "true"
    assert error.json_body["error"]["code"] == "idempotency_key_in_use"
    assert error.json_body["error"]["type"] == "invalid_request_error"
    assert "There is currently another in-progress request using this Idempotent Key" in error.user_message
    # The SDK retries a 409 (Stripe-Should-Retry: true): once the first request is through, it is replayed.
    threading.Timer(0.2, release.set).start()
    retried = client(sandbox, retries=3).v1.customers.create(params=params, options={"idempotency_key": "twice"})
    first.join(10)
    holder.join(10)
    assert retried.id == results["first"].id  # type: ignore[attr-defined]
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"
    assert [c["id"] for c in sandbox_records(sandbox, "stripe", "customers") if c.get("email") == params["email"]] == [
        retried.id
    ]


# -- writes ---------------------------------------------------------------------------------------------
def test_invoice_flow_from_customer_to_paid_with_events(sandbox: Sandbox) -> None:
    app, sdk = sandbox.apps["stripe"], client(sandbox)
    app.clock = lambda: time.time() - 3600  # an older write, outside the window asked below
    sdk.v1.customers.create(params={"name": "Earlier"})
    app.clock = time.time
    since = int(time.time()) - 5
    customer = sdk.v1.customers.create(
        params={"email": "billing@acme.example", "name": "Acme", "metadata": {"hubspot_company_id": "42"}}
    )
    item = sdk.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 120_000, "currency": "eur", "description": "Consulting"}
    )
    assert item.invoice is None
    invoice = sdk.v1.invoices.create(
        params={
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"hubspot_deal_id": "9001"},
        }
    )
    assert (invoice.status, invoice.currency, invoice.total, invoice.amount_due) == (
        "draft",
        "eur",
        120_000,
        120_000,
    )
    extra = sdk.v1.invoice_items.create(params={"customer": customer.id, "invoice": invoice.id, "amount": 30_000})
    assert extra.currency == "eur" and extra.invoice == invoice.id
    invoice = sdk.v1.invoices.retrieve(invoice.id)
    assert [line.amount for line in invoice.lines.data] == [120_000, 30_000] and invoice.amount_due == 150_000
    finalized = sdk.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open" and finalized.number and finalized.due_date >= finalized.created + 30 * 86400
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.invoices.update(invoice.id, params={"days_until_due": 10})  # only drafts change terms
    assert sdk.v1.invoices.update(invoice.id, params={"metadata": {"po": "PO-1"}}).metadata.to_dict() == {
        "hubspot_deal_id": "9001",
        "po": "PO-1",
    }
    paid = sdk.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining, paid.paid) == ("paid", 150_000, 0, True)
    charge = sdk.v1.charges.retrieve(paid.charge)
    assert (charge.amount, charge.invoice, charge.customer, charge.status) == (
        150_000,
        invoice.id,
        customer.id,
        "succeeded",
    )
    assert [c.id for c in sdk.v1.charges.list(params={"customer": customer.id}).data] == [charge.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.invoices.pay(invoice.id)
    assert caught.value.user_message == "Invoice is already paid"

    wire = events(sandbox, **{"types[]": "invoice.*", "created[gt]": since})
    types = [e["type"] for e in wire]
    assert types == [
        "invoice.payment_succeeded",
        "invoice.paid",
        "invoice.updated",
        "invoice.finalized",
        "invoice.updated",
        "invoice.created",
    ]
    assert all(e["data"]["object"]["id"] == invoice.id and e["api_version"] == "2024-06-20" for e in wire)
    assert wire[2]["data"]["previous_attributes"] == {"metadata": {"po": None}}
    assert wire[1]["data"]["object"]["status"] == "paid" and wire[3]["data"]["object"]["status"] == "open"
    sdk_types = [
        e.type
        for e in sdk.v1.events.list(
            params={"types": ["invoice.*", "charge.*"], "created": {"gt": since}}
        ).auto_paging_iter()
    ]
    assert sdk_types == [*types[:2], "charge.succeeded", *types[2:]]
    everything = {e["type"] for e in events(sandbox, **{"created[gt]": since})}
    assert {"customer.created", "invoiceitem.created", "charge.succeeded"} <= everything
    assert all(e["data"]["object"].get("name") != "Earlier" for e in events(sandbox, **{"created[gt]": since}))
    assert any(e["data"]["object"].get("name") == "Earlier" for e in events(sandbox, type="customer.created"))


def test_out_of_band_void_uncollectible_and_draft_deletion(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    customer = sdk.v1.customers.create(params={"email": "oob@example.com"})

    def invoice_of(amount: int) -> stripe.Invoice:
        created = sdk.v1.invoices.create(params={"customer": customer.id, "currency": "usd"})
        sdk.v1.invoice_items.create(params={"customer": customer.id, "invoice": created.id, "amount": amount})
        return created

    manual = sdk.v1.invoices.pay(invoice_of(5_000).id, params={"paid_out_of_band": True})  # draft: finalized first
    assert (manual.status, manual.paid_out_of_band, manual.charge, manual.amount_remaining) == (
        "paid",
        True,
        None,
        0,
    )
    assert manual.number is not None
    assert sdk.v1.charges.list(params={"customer": customer.id}).data == []
    voided = sdk.v1.invoices.void_invoice(sdk.v1.invoices.finalize_invoice(invoice_of(700).id).id)
    assert voided.status == "void" and voided.status_transitions.voided_at
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.invoices.pay(voided.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.invoices.delete(voided.id)
    assert "only delete draft invoices" in caught.value.user_message
    uncollectible = sdk.v1.invoices.mark_uncollectible(sdk.v1.invoices.finalize_invoice(invoice_of(900).id).id)
    assert uncollectible.status == "uncollectible" and sdk.v1.invoices.pay(uncollectible.id).status == "paid"
    draft = invoice_of(300)
    deleted = sdk.v1.invoices.delete(draft.id)
    assert deleted.deleted is True and deleted.id == draft.id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.invoices.retrieve(draft.id)
    assert caught.value.http_status == 404
    zero = sdk.v1.invoices.finalize_invoice(sdk.v1.invoices.create(params={"customer": customer.id}).id)
    assert zero.status == "paid" and zero.amount_due == 0  # nothing to collect: paid at finalization
    credit = invoice_of(1_000)
    sdk.v1.invoice_items.create(params={"customer": customer.id, "invoice": credit.id, "amount": -1_500})
    credit = sdk.v1.invoices.retrieve(credit.id)
    assert (credit.total, credit.amount_due) == (-500, 0)  # negative items are credits, as at Stripe


def test_validation_errors_name_the_parameter(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    customer = sdk.v1.customers.create(params={"email": "v@example.com"})
    cases = [
        (lambda: sdk.v1.invoices.create(params={}), "customer", "Missing required param: customer."),
        (
            lambda: sdk.v1.invoices.create(params={"customer": "cus_ghost"}),
            "customer",
            "No such customer: 'cus_ghost'",
        ),
        (
            lambda: sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": 100, "currency": "xyz"}),
            "currency",
            "Invalid currency: xyz.",
        ),
        (
            lambda: sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": "12.5", "currency": "usd"}),
            "amount",
            "Invalid integer: 12.5",
        ),
        (
            lambda: sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": 10**9, "currency": "usd"}),
            "amount",
            "less than or equal to 99999999",
        ),
        (
            lambda: sdk.v1.invoice_items.create(params={"customer": customer.id, "quantity": -1, "unit_amount": 5}),
            "quantity",
            "greater than or equal to 0",
        ),
        (
            lambda: sdk.v1.customers.create(params={"nickname": "x"}),
            "nickname",
            "Received unknown parameter: nickname",
        ),
        (
            lambda: sdk.v1.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice"}),
            "days_until_due",
            "need `days_until_due`",
        ),
    ]
    for call, param, message in cases:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        error = caught.value
        assert (error.http_status, error.param) == (400, param), error.json_body
        assert message in error.user_message and error.json_body["error"]["type"] == "invalid_request_error"
    assert caught.value.headers["Stripe-Should-Retry"] == "false"


def test_customer_update_merges_metadata_and_reports_previous_attributes(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    customer = sdk.v1.customers.create(params={"name": "Old", "metadata": {"a": "1", "b": "2"}})
    updated = sdk.v1.customers.update(customer.id, params={"name": "New", "metadata": {"b": "", "c": "3"}})
    assert updated.name == "New" and updated.metadata.to_dict() == {"a": "1", "c": "3"}
    wire = api(sandbox, "POST", f"/v1/customers/{customer.id}", data={"phone": "+15550100", "email": ""})
    assert wire.status_code == 200 and wire.json()["phone"] == "+15550100" and wire.json()["email"] is None
    changes = [e for e in events(sandbox, type="customer.updated") if e["data"]["object"]["id"] == customer.id]
    assert [e["data"]["previous_attributes"] for e in changes] == [
        {"phone": None},
        {"name": "Old", "metadata": {"b": "2", "c": None}},
    ]
    unchanged = sdk.v1.customers.update(customer.id, params={"name": "New"})
    assert unchanged.name == "New"
    assert len([e for e in events(sandbox, type="customer.updated") if e["data"]["object"]["id"] == customer.id]) == 2
    cleared = sdk.v1.customers.update(customer.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}


def test_deleted_customer_is_a_tombstone_not_listed_and_keeps_cursors_valid(sandbox: Sandbox) -> None:
    sdk = client(sandbox)
    before = [c.id for c in sdk.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    victim = before[5]
    deleted = sdk.v1.customers.delete(victim)
    assert deleted.to_dict() == {"id": victim, "object": "customer", "deleted": True}
    assert sdk.v1.customers.retrieve(victim).to_dict() == {
        "id": victim,
        "object": "customer",
        "deleted": True,
    }
    after = [c.id for c in sdk.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert after == before[:5] + before[6:]
    page = sdk.v1.customers.list(params={"starting_after": victim, "limit": 3})  # a cursor saved before the delete
    assert [c.id for c in page.data] == before[6:9]
    assert {"id": victim, "object": "customer", "deleted": True} in sandbox_records(sandbox, "stripe", "customers")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.customers.delete(victim)
    assert caught.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.invoices.create(params={"customer": victim})
    assert caught.value.http_status == 400 and caught.value.code == "resource_missing"
    gone = [e for e in events(sandbox, type="customer.deleted") if e["data"]["object"]["id"] == victim]
    assert len(gone) == 1 and gone[0]["data"]["object"]["email"]
    assert sdk.v1.customers.search(params={"query": f"email:'{gone[0]['data']['object']['email']}'"}).data == []


def test_mutate_and_delete_are_seen_through_events(sandbox: Sandbox) -> None:
    base = sandbox.url("stripe")
    since = int(time.time()) - 1
    before = {r["id"]: r for r in sandbox_records(sandbox, "stripe", "invoices")}
    order = {"object_type": "invoices", "count": 12, "delete": 3, "seed": 5}
    outcome = requests.post(f"{base}/__sandbox__/mutate", json=order, timeout=10).json()
    after = {r["id"]: r for r in sandbox_records(sandbox, "stripe", "invoices")}
    seen = events(sandbox, **{"types[]": "invoice.*", "created[gte]": since})
    touched = {e["data"]["object"]["id"] for e in seen}
    assert set(outcome["changed"]) <= touched
    for invoice_id in outcome["changed"]:
        old, new = before[invoice_id], after[invoice_id]
        if old["status"] in ("open", "uncollectible"):
            assert new["status"] == "paid" and new["amount_remaining"] == 0
            charge = client(sandbox).v1.charges.retrieve(new["charge"])
            assert charge.amount == old["amount_remaining"] and charge.invoice == invoice_id
        else:
            assert new["metadata"] != old["metadata"]
            update = next(e for e in seen if e["type"] == "invoice.updated" and e["data"]["object"]["id"] == invoice_id)
            assert "metadata" in update["data"]["previous_attributes"]
    for invoice_id in outcome["deleted"]:
        old, new = before[invoice_id], after.get(invoice_id)
        assert new is not None and new["status"] == (
            "void" if old["status"] in ("open", "uncollectible") else old["status"]
        )
    customers = requests.post(
        f"{base}/__sandbox__/mutate",
        json={"object_type": "customers", "count": 4, "delete": 2, "seed": 1},
        timeout=10,
    ).json()
    customer_events = events(sandbox, **{"types[]": "customer.*", "created[gte]": since})
    updated = {e["data"]["object"]["id"] for e in customer_events if e["type"] == "customer.updated"}
    removed = {e["data"]["object"]["id"] for e in customer_events if e["type"] == "customer.deleted"}
    assert updated == set(customers["changed"]) and removed == set(customers["deleted"])
    listed = {c.id for c in client(sandbox).v1.customers.list(params={"limit": 100}).auto_paging_iter()}
    assert not listed & removed
    charges = requests.post(
        f"{base}/__sandbox__/mutate", json={"object_type": "charges", "count": 3, "seed": 2}, timeout=10
    ).json()
    charge_updates = {e["data"]["object"]["id"] for e in events(sandbox, type="charge.updated")}
    assert set(charges["changed"]) <= charge_updates


def test_events_reach_back_30_days_only(sandbox: Sandbox) -> None:
    app, sdk = sandbox.apps["stripe"], client(sandbox)
    customer = sdk.v1.customers.create(params={"name": "Ages"})
    found = sdk.v1.events.list(params={"type": "customer.*"})
    assert [e.data.object.id for e in found.data] == [customer.id]
    app.clock = lambda: time.time() + 31 * 86400
    assert sdk.v1.events.list(params={"type": "customer.*"}).data == []
    assert sdk.v1.events.retrieve(found.data[0].id).type == "customer.created"
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.events.list(params={"type": "customer.created", "types": ["invoice.*"]})
