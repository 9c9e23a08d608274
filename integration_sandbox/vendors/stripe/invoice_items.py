"""Stripe invoice items: pending charges for a customer, or new lines on one of its draft invoices."""

from __future__ import annotations

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.errors import bad, stripe_error
from integration_sandbox.vendors.stripe.invoices import Invoices
from integration_sandbox.vendors.stripe.listing import LIST_PARAMS
from integration_sandbox.vendors.stripe.params import form_params, merge_metadata, query_params

MAX_AMOUNT = 99_999_999


class InvoiceItems(Invoices):
    def _list_invoiceitems(self, request: Request) -> Response:
        params = query_params(request, LIST_PARAMS | {"customer", "invoice", "pending"})
        customer, invoice, pending = (
            params.text("customer"),
            params.text("invoice"),
            params.boolean("pending"),
        )

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (invoice is None or record.get("invoice") == invoice)
                and (pending is None or (record.get("invoice") is None) == pending)
            )

        return self._list(params, "invoiceitems", keep, "/v1/invoiceitems")

    def _create_invoiceitem(self, request: Request) -> Response:
        params = form_params(
            request,
            {
                "amount",
                "currency",
                "customer",
                "description",
                "discountable",
                "expand",
                "invoice",
                "metadata",
                "period",
                "quantity",
                "unit_amount",
            },
        )
        customer_id = params.text("customer", required=True) or ""
        amount = params.integer("amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
        unit_amount = params.integer("unit_amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
        quantity = params.integer("quantity", minimum=0)
        currency = params.currency()
        metadata = params.metadata()
        if amount is not None and (unit_amount is not None or quantity is not None):
            raise bad("You may only specify one of these parameters: amount, unit_amount.", "amount")
        if amount is None and unit_amount is None:
            raise bad("Missing required param: amount.", "amount")
        quantity = 1 if quantity is None else quantity
        amount = amount if amount is not None else (unit_amount or 0) * quantity
        customer = self._live_customer(customer_id)
        invoice = None
        invoice_id = params.text("invoice")
        if invoice_id:
            invoice = self._get("invoices", invoice_id, param="invoice", status=400)
            if invoice.get("customer") != customer_id:
                raise bad(f"The invoice {invoice_id} belongs to a different customer.", "invoice")
            if invoice.get("status") != "draft":
                raise stripe_error(
                    400,
                    f"Invoice {invoice_id} is no longer a draft: invoice items can only be added to drafts.",
                    code="invoice_not_editable",
                    param="invoice",
                )
        currency = currency or (invoice or {}).get("currency") or customer.get("currency")
        if not currency:
            raise bad("Missing required param: currency.", "currency")
        if invoice is not None and currency != invoice.get("currency"):
            raise bad(
                f"The currency of the invoice item ({currency}) must match the currency of the invoice "
                f"({invoice.get('currency')}).",
                "currency",
            )
        now = self._now()
        period = params.data.get("period") if isinstance(params.data.get("period"), dict) else None
        item: Record = {
            "id": self.new_id("invoiceitems"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer_id,
            "date": now,
            "description": params.nullable_text("description"),
            "discountable": params.boolean("discountable") is not False,
            "invoice": invoice_id or None,
            "livemode": False,
            "metadata": merge_metadata({}, metadata),
            "period": {
                "start": int((period or {}).get("start") or now),
                "end": int((period or {}).get("end") or now),
            },
            "proration": False,
            "quantity": quantity,
            "unit_amount": unit_amount if unit_amount is not None else (amount // quantity if quantity else amount),
        }
        self.store("invoiceitems", item)
        self._emit("invoiceitem.created", item, request, now)
        if invoice is not None:
            self._attach_items(invoice, [item], request, now, emit=True)
        return self._ok("invoiceitems", item, params.expand())
