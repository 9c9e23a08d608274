"""Stripe invoices as drafts: list, create (taking pending items), update, delete, and their lines."""

from __future__ import annotations

from typing import Any, ClassVar

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import StripeCore
from integration_sandbox.vendors.stripe.errors import bad, stripe_error
from integration_sandbox.vendors.stripe.listing import LIST_PARAMS
from integration_sandbox.vendors.stripe.params import Params, form_params, merge_metadata, query_params
from integration_sandbox.vendors.stripe.shapes import invoice_constants, line_item, lines_list

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")


class Invoices(StripeCore):
    INVOICE_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {"auto_advance", "collection_method", "days_until_due", "description", "due_date", "expand", "footer"}
        | {"metadata"}
    )

    def _list_invoices(self, request: Request) -> Response:
        params = query_params(
            request, LIST_PARAMS | {"customer", "status", "collection_method", "subscription", "due_date"}
        )
        customer = params.text("customer")
        status = params.choice("status", INVOICE_STATUSES)
        method = params.choice("collection_method", ("charge_automatically", "send_invoice"))
        subscription = params.text("subscription")

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (status is None or record.get("status") == status)
                and (method is None or record.get("collection_method") == method)
                and (subscription is None or record.get("subscription") == subscription)
            )

        return self._list(params, "invoices", keep, "/v1/invoices")

    def _invoice_terms(self, params: Params, current: Record) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        method = params.choice("collection_method", ("charge_automatically", "send_invoice"))
        if method is not None:
            changes["collection_method"] = method
        days = params.integer("days_until_due", minimum=0, maximum=730)
        due_date = params.integer("due_date")
        effective = method or current.get("collection_method") or "charge_automatically"
        if (days is not None or due_date is not None) and effective != "send_invoice":
            raise bad(
                "You can only set `days_until_due` or `due_date` on invoices with `collection_method=send_invoice`.",
                "days_until_due" if days is not None else "due_date",
            )
        if days is not None:
            changes["days_until_due"] = days
        if due_date is not None:
            changes["due_date"] = due_date
        if effective == "charge_automatically" and method is not None:
            changes["days_until_due"] = None
            changes["due_date"] = None
        auto_advance = params.boolean("auto_advance")
        if auto_advance is not None:
            changes["auto_advance"] = auto_advance
        for name in ("description", "footer"):
            if params.has(name):
                changes[name] = params.nullable_text(name)
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        return changes

    def _create_invoice(self, request: Request) -> Response:
        params = form_params(request, self.INVOICE_PARAMS | {"customer", "currency", "pending_invoice_items_behavior"})
        customer_id = params.text("customer", required=True) or ""
        currency = params.currency()
        behaviour = params.choice("pending_invoice_items_behavior", ("exclude", "include"))
        draft_terms = self._invoice_terms(params, {})
        if draft_terms.get("collection_method") == "send_invoice" and not (
            draft_terms.get("days_until_due") is not None or draft_terms.get("due_date") is not None
        ):
            raise bad(
                "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.",
                "days_until_due",
            )
        customer = self._live_customer(customer_id)
        pending: list[Record] = []
        if behaviour == "include":
            pending = [
                r for r in self.collections["invoiceitems"] if r.get("customer") == customer_id and not r.get("invoice")
            ]
            currency = currency or (pending[0]["currency"] if pending else None)
            pending = [r for r in pending if r.get("currency") == (currency or r.get("currency"))]
        currency = currency or customer.get("currency") or "usd"
        now = self._now()
        invoice_id = self.new_id("invoices")
        invoice: Record = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Sandbox, Inc.",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": False,
            "billing_reason": "manual",
            "charge": None,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": currency,
            "customer": customer_id,
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "days_until_due": None,
            "description": None,
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "footer": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": lines_list(invoice_id, []),
            "livemode": False,
            "metadata": {},
            "number": None,
            "paid": False,
            "paid_out_of_band": False,
            "payment_intent": None,
            "period_end": now,
            "period_start": min([now, *(int(item.get("date") or now) for item in pending)]),
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": None,
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "tax": None,
            "total": 0,
            "total_excluding_tax": 0,
            "webhooks_delivered_at": None,
            **invoice_constants(),
        }
        invoice.update(draft_terms)
        if pending:
            invoice = self._attach_items(invoice, pending, request, now, emit=False)
        self.store("invoices", invoice)
        self._emit("invoice.created", invoice, request, now)
        return self._ok("invoices", invoice, params.expand())

    def _attach_items(
        self, invoice: Record, items: list[Record], request: Request | None, now: int, *, emit: bool
    ) -> Record:
        """The draft with `items` as new lines and its totals re-summed; the items point at it."""
        lines = list((invoice.get("lines") or {}).get("data") or [])
        for item in items:
            period = item.get("period") or {}
            lines.append(
                line_item(
                    "il_" + item["id"].split("_", 1)[1],
                    invoice["id"],
                    item["amount"],
                    item["currency"],
                    item.get("description"),
                    int(period.get("start") or item["date"]),
                    int(period.get("end") or item["date"]),
                    invoice_item=item["id"],
                    quantity=int(item.get("quantity", 1)),
                    discountable=bool(item.get("discountable", True)),
                    metadata=dict(item.get("metadata") or {}),
                )
            )
            if item.get("invoice") != invoice["id"]:
                self.store("invoiceitems", {**item, "invoice": invoice["id"]})
        subtotal = sum(int(line.get("amount") or 0) for line in lines)
        due = max(subtotal, 0)
        changes = {
            "lines": lines_list(invoice["id"], lines),
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "total": subtotal,
            "total_excluding_tax": subtotal,
            "amount_due": due,
            "amount_paid": 0,
            "amount_remaining": due,
        }
        if emit:
            return self._update("invoices", invoice, changes, request, now)
        return {**invoice, **changes}

    def _update_invoice(self, request: Request) -> Response:
        params = form_params(request, self.INVOICE_PARAMS)
        current = self._get("invoices", request.params["id"])
        status = current.get("status")
        if status != "draft":
            locked = [n for n in ("collection_method", "days_until_due", "due_date") if params.has(n)]
            if status in ("paid", "void") and params.has("auto_advance"):
                locked.append("auto_advance")
            if locked:
                raise stripe_error(
                    400,
                    f"Finalized invoices can't be updated in this way: `{locked[0]}` can only be changed "
                    "on a draft invoice.",
                    code="invoice_not_editable",
                    param=locked[0],
                )
        changes = self._invoice_terms(params, current)
        updated = self._update("invoices", current, changes, request, self._now())
        return self._ok("invoices", updated, params.expand())

    def _delete_invoice_route(self, request: Request) -> Response:
        query_params(request, ())
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "draft":
            raise stripe_error(
                400,
                "You can only delete draft invoices. Finalized invoices can be voided instead.",
                code="invoice_not_editable",
            )
        self._delete_draft(current, request, self._now())
        return Response(200, {"id": current["id"], "object": "invoice", "deleted": True})

    def _delete_draft(self, invoice: Record, request: Request | None, now: int) -> None:
        self.collections["invoices"].remove(invoice["id"])
        for line in (invoice.get("lines") or {}).get("data") or []:
            item_id = line.get("invoice_item")
            if item_id:
                self.collections["invoiceitems"].remove(item_id)
        self._emit("invoice.deleted", invoice, request, now)

    def _invoice_lines(self, request: Request) -> Response:
        params = query_params(request, {"limit", "starting_after", "ending_before", "expand"})
        invoice = self._get("invoices", request.params["id"])
        lines = list((invoice.get("lines") or {}).get("data") or [])
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        ids = [line.get("id") for line in lines]
        after, before = params.text("starting_after"), params.text("ending_before")
        start, end = 0, len(lines)
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor is not None and cursor not in ids:
                raise stripe_error(400, f"No such line item: '{cursor}'", code="resource_missing", param=param)
        if after is not None:
            start = ids.index(after) + 1
        if before is not None:
            end = ids.index(before)
            start = max(start, end - limit)
        page = lines[start : start + limit]
        more = (start + limit < end) if before is None else start > 0
        body = {
            "object": "list",
            "data": page,
            "has_more": more,
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        return Response(200, body)
