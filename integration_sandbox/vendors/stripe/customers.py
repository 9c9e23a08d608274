"""Stripe customers: list (by email), create, update, and delete, which leaves a tombstone in its place."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any, ClassVar

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import StripeCore
from integration_sandbox.vendors.stripe.errors import bad, missing
from integration_sandbox.vendors.stripe.listing import LIST_PARAMS
from integration_sandbox.vendors.stripe.params import Params, form_params, merge_metadata, query_params

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Customers(StripeCore):
    CUSTOMER_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {
            "address",
            "balance",
            "description",
            "email",
            "expand",
            "invoice_prefix",
            "invoice_settings",
            "metadata",
            "name",
            "next_invoice_sequence",
            "payment_method",
            "phone",
            "preferred_locales",
            "shipping",
            "source",
            "tax_exempt",
            "test_clock",
        }
    )

    def _list_customers(self, request: Request) -> Response:
        params = query_params(request, LIST_PARAMS | {"email", "test_clock"})
        email = params.text("email", max_length=512)

        def keep(record: Record) -> bool:
            return not record.get("deleted") and (email is None or record.get("email") == email)

        return self._list(params, "customers", keep, "/v1/customers")

    def _customer_changes(self, params: Params, current: Record) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if params.has("email"):
            email = params.nullable_text("email", max_length=512)
            if email is not None and not _EMAIL.match(email):
                raise bad(f"Invalid email address: {email}", "email")
            changes["email"] = email
        for name, limit in (("name", 256), ("phone", 20), ("description", 350)):
            if params.has(name):
                changes[name] = params.nullable_text(name, max_length=limit)
        for name in ("address", "shipping"):
            value = params.data.get(name)
            if value is not None:
                if value != "" and not isinstance(value, dict):
                    raise bad("Invalid object", name)
                changes[name] = value or None
        if params.has("preferred_locales"):
            locales = params.data["preferred_locales"]
            changes["preferred_locales"] = (
                [] if locales == "" else list(locales if isinstance(locales, list) else [locales])
            )
        if params.has("invoice_prefix"):
            prefix = params.text("invoice_prefix") or ""
            if not re.fullmatch(r"[A-Z0-9]{3,12}", prefix):
                raise bad("Invoice prefixes must be 3-12 uppercase letters or numbers.", "invoice_prefix")
            changes["invoice_prefix"] = prefix
        tax_exempt = params.choice("tax_exempt", ("none", "exempt", "reverse"))
        if tax_exempt is not None:
            changes["tax_exempt"] = tax_exempt
        balance = params.integer("balance")
        if balance is not None:
            changes["balance"] = balance
        sequence = params.integer("next_invoice_sequence", minimum=1)
        if sequence is not None:
            changes["next_invoice_sequence"] = sequence
        settings = params.data.get("invoice_settings")
        if isinstance(settings, dict):
            changes["invoice_settings"] = {**(current.get("invoice_settings") or {}), **settings}
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        return changes

    def _create_customer(self, request: Request) -> Response:
        params = form_params(request, self.CUSTOMER_PARAMS)
        now = self._now()
        record: Record = {
            "id": self.new_id("customers"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": now,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        record.update(self._customer_changes(params, record))
        self.store("customers", record)
        self._emit("customer.created", record, request, now)
        return self._ok("customers", record)

    def _update_customer(self, request: Request) -> Response:
        params = form_params(request, self.CUSTOMER_PARAMS)
        current = self._get("customers", request.params["id"])
        if current.get("deleted"):
            raise missing("customers", current["id"], "id", 404)
        changes = self._customer_changes(params, current)
        updated = self._update("customers", current, changes, request, self._now())
        return self._ok("customers", updated)

    def _delete_customer_route(self, request: Request) -> Response:
        query_params(request, ())
        current = self._get("customers", request.params["id"])
        if current.get("deleted"):
            raise missing("customers", current["id"], "id", 404)
        return self._ok("customers", self._delete_customer(current, request, self._now()))

    def _delete_customer(self, current: Record, request: Request | None, now: int) -> Record:
        tombstone = {"id": current["id"], "object": "customer", "deleted": True}
        self._tombstone_created[current["id"]] = int(current.get("created") or 0)
        self.store("customers", tombstone)
        self._emit("customer.deleted", current, request, now)
        return tombstone
