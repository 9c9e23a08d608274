"""The Stripe app: its resources composed, its routes, and how a user of Stripe edits and deletes records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from integration_sandbox.kit import Request, Response, Route
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.charges import Charges
from integration_sandbox.vendors.stripe.customers import Customers
from integration_sandbox.vendors.stripe.events import Events
from integration_sandbox.vendors.stripe.invoice_items import InvoiceItems
from integration_sandbox.vendors.stripe.invoice_states import InvoiceStates
from integration_sandbox.vendors.stripe.search import Search


class StripeApp(Customers, InvoiceItems, InvoiceStates, Charges, Events, Search):
    """Stripe: one mixin per resource, all over `StripeCore`, which holds the state they share."""

    vendor: ClassVar[str] = "stripe"
    object_types: ClassVar[tuple[str, ...]] = ("customers", "invoices", "charges")
    request_id_header: ClassVar[str] = "Request-Id"

    def build_routes(self) -> list[Route]:
        def read(kind: str) -> str:
            return f"{kind}:read"

        def write(kind: str) -> str:
            return f"{kind}:write"

        def post(template: str, endpoint: Callable[[Request], Response], scope: str) -> Route:
            return Route("POST", template, self.idempotency.wrap(endpoint), scope)

        return [
            Route("GET", "/v1/customers/search", lambda r: self._search(r, "customers"), read("customers")),
            Route("GET", "/v1/customers", self._list_customers, read("customers")),
            post("/v1/customers", self._create_customer, write("customers")),
            Route("GET", "/v1/customers/{id}", lambda r: self._retrieve(r, "customers"), read("customers")),
            post("/v1/customers/{id}", self._update_customer, write("customers")),
            Route("DELETE", "/v1/customers/{id}", self._delete_customer_route, write("customers")),
            Route("GET", "/v1/invoices/search", lambda r: self._search(r, "invoices"), read("invoices")),
            Route("GET", "/v1/invoices", self._list_invoices, read("invoices")),
            post("/v1/invoices", self._create_invoice, write("invoices")),
            Route("GET", "/v1/invoices/{id}", lambda r: self._retrieve(r, "invoices"), read("invoices")),
            post("/v1/invoices/{id}", self._update_invoice, write("invoices")),
            Route("DELETE", "/v1/invoices/{id}", self._delete_invoice_route, write("invoices")),
            Route("GET", "/v1/invoices/{id}/lines", self._invoice_lines, read("invoices")),
            post("/v1/invoices/{id}/finalize", self._finalize_invoice, write("invoices")),
            post("/v1/invoices/{id}/pay", self._pay_invoice, write("invoices")),
            post("/v1/invoices/{id}/void", self._void_invoice, write("invoices")),
            post("/v1/invoices/{id}/mark_uncollectible", self._mark_uncollectible, write("invoices")),
            Route("GET", "/v1/invoiceitems", self._list_invoiceitems, read("invoices")),
            post("/v1/invoiceitems", self._create_invoiceitem, write("invoices")),
            Route("GET", "/v1/invoiceitems/{id}", lambda r: self._retrieve(r, "invoiceitems"), read("invoices")),
            Route("GET", "/v1/charges/search", lambda r: self._search(r, "charges"), read("charges")),
            Route("GET", "/v1/charges", self._list_charges, read("charges")),
            Route("GET", "/v1/charges/{id}", lambda r: self._retrieve(r, "charges"), read("charges")),
            post("/v1/charges/{id}", self._update_charge, write("charges")),
            Route("GET", "/v1/events", self._list_events, read("events")),
            Route("GET", "/v1/events/{id}", lambda r: self._retrieve(r, "events"), read("events")),
        ]

    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        request_time = int(now)
        if object_type == "customers":
            choice = rng.choice(["name", "phone", "email", "metadata"])
            email = record.get("email")
            if choice == "email" and email:
                changed = {"email": email.lower() if email != email.lower() else email.upper()}
            elif choice == "name":
                base = record.get("name") or "Customer"
                changed = {"name": f"{base} {rng.choice(['Ltd', 'Inc.', 'GmbH', '& Co', 'Group'])}"}
            elif choice == "phone":
                changed = {"phone": "+1" + "".join(str(rng.randrange(10)) for _ in range(10))}
            else:
                changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("customers", record, changed, None, request_time)
        if object_type == "invoices" and record.get("status") in ("open", "uncollectible"):
            return self._pay(record, out_of_band=False, request=None, now=request_time)
        if object_type == "invoices":
            changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("invoices", record, changed, None, request_time)
        if object_type == "charges":
            if rng.random() < 0.5:
                changed = {"description": f"{record.get('description') or 'Payment'} (edited)"}
            else:
                changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("charges", record, changed, None, request_time)
        return dict(record)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        record = self.collections[object_type].get(record_id)
        if record is None:
            return None
        when = int(now)
        if object_type == "customers":
            return record if record.get("deleted") else self._delete_customer(record, None, when)
        if object_type == "invoices":
            if record.get("status") == "draft":
                self._delete_draft(record, None, when)
                return None
            if record.get("status") in ("open", "uncollectible"):
                return self._transition(record, "void", "invoice.voided", None, when)
            return record  # paid and void invoices can be neither deleted nor voided
        if object_type == "charges":
            if record.get("refunded"):
                return record
            amount = int(record.get("amount") or 0)
            return self._update(
                "charges",
                record,
                {"refunded": True, "amount_refunded": amount},
                None,
                when,
                "charge.refunded",
            )
        self.collections[object_type].remove(record_id)
        return None
