"""Stripe charges: listed and edited here; they are made when an invoice is paid (`invoice_states`)."""

from __future__ import annotations

from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import StripeCore
from integration_sandbox.vendors.stripe.errors import bad
from integration_sandbox.vendors.stripe.listing import LIST_PARAMS
from integration_sandbox.vendors.stripe.params import form_params, merge_metadata, query_params


class Charges(StripeCore):
    def _list_charges(self, request: Request) -> Response:
        params = query_params(request, LIST_PARAMS | {"customer", "payment_intent", "transfer_group"})
        customer, intent = params.text("customer"), params.text("payment_intent")
        group = params.text("transfer_group")

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (intent is None or record.get("payment_intent") == intent)
                and (group is None or record.get("transfer_group") == group)
            )

        return self._list(params, "charges", keep, "/v1/charges")

    def _update_charge(self, request: Request) -> Response:
        params = form_params(
            request,
            {"customer", "description", "expand", "fraud_details", "metadata", "receipt_email", "shipping"},
        )
        current = self._get("charges", request.params["id"])
        changes: dict[str, Any] = {}
        if params.has("description"):
            changes["description"] = params.nullable_text("description")
        if params.has("receipt_email"):
            changes["receipt_email"] = params.nullable_text("receipt_email")
        if params.has("customer"):
            customer_id = params.text("customer") or ""
            self._live_customer(customer_id)
            if current.get("customer") and current.get("customer") != customer_id:
                raise bad("A charge's customer can only be set when the charge has none.", "customer")
            changes["customer"] = customer_id
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        updated = self._update("charges", current, changes, request, self._now())
        return self._ok("charges", updated, params.expand())
