"""An invoice after its draft: finalize, pay (with the charge Stripe makes), void, mark uncollectible."""

from __future__ import annotations

from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import DAY_S, StripeCore
from integration_sandbox.vendors.stripe.errors import stripe_error
from integration_sandbox.vendors.stripe.params import form_params
from integration_sandbox.vendors.stripe.shapes import card_payment


class InvoiceStates(StripeCore):
    def _finalize_invoice(self, request: Request) -> Response:
        params = form_params(request, {"auto_advance", "expand"})
        auto_advance = params.boolean("auto_advance")
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "draft":
            raise stripe_error(
                400,
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
            )
        finalized = self._finalize(current, request, self._now(), auto_advance)
        return self._ok("invoices", finalized, params.expand())

    def _finalize(self, invoice: Record, request: Request | None, now: int, auto_advance: bool | None) -> Record:
        changes: dict[str, Any] = {
            "status": "open",
            "number": self._next_number(invoice),
            "effective_at": now,
            "ending_balance": 0,
            "status_transitions": {**(invoice.get("status_transitions") or {}), "finalized_at": now},
        }
        if auto_advance is not None:
            changes["auto_advance"] = auto_advance
        if invoice.get("collection_method") == "send_invoice" and invoice.get("due_date") is None:
            changes["due_date"] = now + DAY_S * int(invoice.get("days_until_due") or 0)
        finalized = {**invoice, **changes}
        self.store("invoices", finalized)
        self._emit("invoice.finalized", finalized, request, now)
        if int(finalized.get("amount_due") or 0) == 0:  # nothing to collect: Stripe marks it paid
            return self._pay(finalized, out_of_band=False, request=request, now=now)
        return finalized

    def _next_number(self, invoice: Record) -> str:
        if self._invoice_numbers is None:
            self._invoice_numbers = {}
            for record in self.collections["invoices"]:
                number = record.get("number") or ""
                prefix, _, sequence = number.rpartition("-")
                if prefix and sequence.isdigit():
                    self._invoice_numbers[prefix] = max(self._invoice_numbers.get(prefix, 0), int(sequence))
        customer = self.collections["customers"].get(invoice.get("customer")) or {}
        prefix = customer.get("invoice_prefix") or str(invoice.get("customer", "SANDBOX"))[-8:].upper()
        sequence = self._invoice_numbers.get(prefix, 0) + 1
        self._invoice_numbers[prefix] = sequence
        return f"{prefix}-{sequence:04d}"

    def _pay_invoice(self, request: Request) -> Response:
        params = form_params(
            request,
            {"expand", "forgive", "mandate", "off_session", "paid_out_of_band", "payment_method", "source"},
        )
        out_of_band = bool(params.boolean("paid_out_of_band"))
        current = self._get("invoices", request.params["id"])
        now = self._now()
        status = current.get("status")
        if status == "paid":
            raise stripe_error(400, "Invoice is already paid", code="invoice_already_paid")
        if status == "void":
            raise stripe_error(400, "This invoice has been voided and can no longer be paid.", code="invoice_not_open")
        if status == "draft":  # Stripe finalizes a draft before attempting payment
            current = self._finalize(current, request, now, None)
            if current.get("status") == "paid":
                return self._ok("invoices", current, params.expand())
        paid = self._pay(current, out_of_band=out_of_band, request=request, now=now)
        return self._ok("invoices", paid, params.expand())

    def _pay(self, invoice: Record, *, out_of_band: bool, request: Request | None, now: int) -> Record:
        """Collects `amount_remaining` (with a charge unless paid out of band); the invoice becomes paid."""
        remaining = int(invoice.get("amount_remaining") or 0)
        changes: dict[str, Any] = {
            "status": "paid",
            "paid": True,
            "paid_out_of_band": out_of_band,
            "amount_paid": int(invoice.get("amount_paid") or 0) + remaining,
            "amount_remaining": 0,
            "status_transitions": {**(invoice.get("status_transitions") or {}), "paid_at": now},
        }
        charge = None
        if remaining > 0 and not out_of_band:
            charge = self._charge_for(invoice, remaining, now)
            self.store("charges", charge)
            self._emit("charge.succeeded", charge, request, now)
            changes.update(
                charge=charge["id"],
                payment_intent=charge["payment_intent"],
                attempted=True,
                attempt_count=int(invoice.get("attempt_count") or 0) + 1,
            )
        paid = {**invoice, **changes}
        self.store("invoices", paid)
        self._emit("invoice.paid", paid, request, now)
        if charge is not None:
            self._emit("invoice.payment_succeeded", paid, request, now)
        return paid

    def _charge_for(self, invoice: Record, amount: int, now: int) -> Record:
        customer = self.collections["customers"].get(invoice.get("customer")) or {}
        charge_id = self.new_id("charges")
        return {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": self.new_id("txn"),
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": customer.get("email"),
                "name": customer.get("name"),
                "phone": None,
            },
            "captured": True,
            "created": now,
            "currency": invoice.get("currency"),
            "customer": invoice.get("customer"),
            "description": f"Payment for Invoice {invoice.get('number') or invoice['id']}",
            "disputed": False,
            "failure_code": None,
            "failure_message": None,
            "invoice": invoice["id"],
            "livemode": False,
            "metadata": {},
            "outcome": {
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": True,
            "payment_intent": self.new_id("pi"),
            "payment_method": self.new_id("pm"),
            "payment_method_details": card_payment(
                str(invoice.get("customer")), int(customer.get("created") or now), now
            ),
            "receipt_email": customer.get("email"),
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        }

    def _void_invoice(self, request: Request) -> Response:
        params = form_params(request, {"expand"})
        current = self._get("invoices", request.params["id"])
        if current.get("status") not in ("open", "uncollectible"):
            raise stripe_error(
                400,
                f"You can only void open or uncollectible invoices; this invoice is {current.get('status')}.",
                code="invoice_not_open" if current.get("status") == "draft" else None,
            )
        voided = self._transition(current, "void", "invoice.voided", request, self._now())
        return self._ok("invoices", voided, params.expand())

    def _mark_uncollectible(self, request: Request) -> Response:
        params = form_params(request, {"expand"})
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "open":
            raise stripe_error(
                400, f"You can only mark open invoices as uncollectible; this one is {current.get('status')}."
            )
        marked = self._transition(current, "uncollectible", "invoice.marked_uncollectible", request, self._now())
        return self._ok("invoices", marked, params.expand())

    def _transition(self, invoice: Record, status: str, event_type: str, request: Request | None, now: int) -> Record:
        stamp = {"void": "voided_at", "uncollectible": "marked_uncollectible_at"}[status]
        changed = {
            **invoice,
            "status": status,
            "status_transitions": {**(invoice.get("status_transitions") or {}), stamp: now},
        }
        self.store("invoices", changed)
        self._emit(event_type, changed, request, now)
        return changed
