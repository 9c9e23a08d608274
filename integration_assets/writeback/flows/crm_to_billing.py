"""Flow 1, CRM → billing: every closed-won deal with a resolved client gets exactly one Stripe customer and one
invoice for the deal's amount, in its currency.

Planned from the warehouse: a won deal needs an invoice when no live Stripe invoice links to it (invoices in
review count: they exist); its client needs a customer when the canonical layer linked none. Delivered with
a look-up first (the customer by its metadata link, the invoice among the customer's invoices by the deal id
in its metadata) and idempotency keys derived from the deal and its version, so neither a lost response nor a
replay from the outbox ever makes a second customer or invoice.

The invoice's amount is planned in canonical (ISO-4217) minor units and sent in Stripe's own (`stripe_amount`,
through the billing system's `minor_units`): 5000 ISK is 500000 at Stripe. An amount Stripe's unit cannot hold
exactly (500.50 MGA, zero-decimal at Stripe) breaks the contract and goes to review instead of being rounded.
"""

from __future__ import annotations

from typing import Any

import pandera.pandas as pa

from integration_assets.core.http import ApiClient
from integration_assets.core.payload import resolve_path
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.normalize import Money, currency_exponent, to_source_minor, vendor_id
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.writes import StripeWrites, metadata_key
from integration_assets.writeback import sync_log
from integration_assets.writeback.config import FlowSettings, InvoiceSettings
from integration_assets.writeback.contracts import known_currency
from integration_assets.writeback.flows.common import epoch_ms
from integration_assets.writeback.model import Outcome, PlannedWrite, Status, idempotency_key
from integration_assets.writeback.ownership import link_path

__all__ = ["CrmToBilling"]

INVOICES = CATALOG.stream("billing/invoices").raw_table  # Stripe invoices as landed

NAME = "crm_to_billing"
STRIPE_NAME_MAX = 256


class CrmToBilling:
    name = NAME
    system = "billing"

    def __init__(self, client: ApiClient, dictionary: FieldDictionary, settings: FlowSettings) -> None:
        self.stripe = StripeWrites(client)
        self.invoice_settings = settings.invoice or InvoiceSettings()
        self.customer_link = link_path(dictionary, "customers", "customer_id", "billing")
        self.deal_link = link_path(dictionary, "invoices", "deal_id", "billing")
        self.customer_key = metadata_key(self.customer_link)
        self._customers: dict[str, str] = {}  # client (canonical id) → Stripe customer id, found or made this run
        self._made: dict[str, str] = {}  # client (canonical id) → Stripe customer id this flow made or found before

    # -- planning ---------------------------------------------------------------------------------------
    def _invoiced_deals(self, warehouse: Warehouse) -> set[str]:
        """Deals whose invoice is made: past draft, or (when this flow does not finalize) a draft with its line.
        A draft without its line (the line was refused, or the run died between create and finalize) is not:
        the deal is planned again, and its delivery finishes that draft rather than making another."""
        warehouse.ensure_raw_table(INVOICES)
        linked = set()
        for (payload,) in warehouse.query(f"SELECT payload FROM {INVOICES} WHERE NOT is_deleted"):
            value = resolve_path(payload, self.deal_link)
            if not (isinstance(value, str | int) and str(value).strip()):
                continue
            status = payload.get("status")
            finished = status != "draft" or (not self.invoice_settings.finalize and StripeWrites.has_lines(payload))
            if status and finished:
                linked.add(f"crm:{str(value).strip()}")
        return linked

    def prepare(self, warehouse: Warehouse) -> None:
        """The Stripe customers this flow made or found before: looked up by id (a consistent read) before
        Stripe's search, which lags behind writes."""
        self._made = sync_log.destination_ids(warehouse, NAME, "customers")

    def plan(self, warehouse: Warehouse) -> list[PlannedWrite]:
        invoiced = self._invoiced_deals(warehouse)
        customers = {
            c["customer_id"]: c
            for c in warehouse.records(
                "SELECT customer_id, name, billing_customer_id FROM canonical.customers WHERE NOT is_deleted"
            )
        }
        deals = warehouse.records(
            "SELECT deal_id, name, customer_id, amount, currency, crm_updated_at FROM canonical.deals "
            "WHERE stage = 'won' AND NOT is_deleted AND customer_id IS NOT NULL ORDER BY deal_id",
        )
        writes: list[PlannedWrite] = []
        planned_customers: set[str] = set()
        for deal in deals:
            client = customers.get(deal["customer_id"])
            if deal["deal_id"] in invoiced or client is None:
                continue  # invoiced already, or its client is in review: the queue shows it
            company = vendor_id(client["customer_id"])
            if client["billing_customer_id"] is None and client["customer_id"] not in planned_customers:
                planned_customers.add(client["customer_id"])
                payload = {"customer_id": client["customer_id"], "name": client["name"]}
                # the key names the client only: a rename between two attempts is the same customer (Stripe
                # refuses the key with other parameters rather than making a second one)
                key = idempotency_key(
                    NAME, client["customer_id"], "1", "customer", {"customer_id": client["customer_id"]}
                )
                writes.append(
                    PlannedWrite(
                        flow=NAME,
                        system="billing",
                        object_type="customers",
                        record_id=client["customer_id"],
                        operation="create",
                        payload=payload,
                        idempotency_key=key,
                        group=client["customer_id"],
                        review_ref=f"crm/companies/{company}",
                        sequence=0,
                    )
                )
            version = str(epoch_ms(deal["crm_updated_at"]) or 0)
            payload = {
                "deal_id": deal["deal_id"],
                "customer_id": client["customer_id"],
                "customer_name": client["name"],
                "description": deal["name"],
                "amount": int(deal["amount"]) if deal["amount"] is not None else None,
                "currency": deal["currency"],
            }
            payload["stripe_amount"] = stripe_amount(payload["amount"], payload["currency"])
            # the key covers what is sent to Stripe (days_until_due too), not the client's name (never sent) nor
            # Stripe's figure, which amount and currency decide
            sent = {k: v for k, v in payload.items() if k not in ("customer_name", "stripe_amount")}
            sent["days_until_due"] = self.invoice_settings.days_until_due
            hint = client["billing_customer_id"]
            writes.append(
                PlannedWrite(
                    flow=NAME,
                    system="billing",
                    object_type="invoices",
                    record_id=deal["deal_id"],
                    operation="create",
                    # the client's Stripe customer as the canonical layer linked it (by metadata, email or domain)
                    payload={**payload, "billing_customer_id": vendor_id(hint) if hint else None},
                    idempotency_key=idempotency_key(NAME, deal["deal_id"], version, "invoice", sent),
                    group=client["customer_id"],
                    review_ref=f"crm/deals/{vendor_id(deal['deal_id'])}",
                    sequence=1,
                    source_version=version,
                )
            )
        return writes

    def contract(self, object_type: str) -> pa.DataFrameSchema:
        crm_id = pa.Check.str_matches(r"^crm:\S+$")
        name = [pa.Check.str_length(1, STRIPE_NAME_MAX)]
        if object_type == "customers":
            return pa.DataFrameSchema({"record_id": pa.Column(str, crm_id), "name": pa.Column(str, name)})
        return pa.DataFrameSchema(
            {
                "record_id": pa.Column(str, crm_id),
                "customer_id": pa.Column(str, crm_id),
                "customer_name": pa.Column(str, name),
                "amount": pa.Column("int64", pa.Check.gt(0)),
                "currency": pa.Column(str, known_currency()),
                "stripe_amount": pa.Column(
                    checks=pa.Check(
                        # a whole number (pandas holds the column as floats once one write has none)
                        lambda value: isinstance(value, int | float) and value > 0 and float(value).is_integer(),
                        element_wise=True,
                        ignore_na=False,  # none is what an amount Stripe cannot hold becomes: say so, not "null"
                        error="an amount Stripe's minor units of its currency hold exactly (no rounding)",
                    ),
                    nullable=True,
                    required=False,  # a write queued before Stripe's units were planned has none
                ),
            }
        )

    # -- delivering -------------------------------------------------------------------------------------
    def deliver(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        if write.object_type == "customers":
            return self._customer(write, dry_run=dry_run)
        return self._invoice(write, dry_run=dry_run)

    def _known_customer(self, client: str) -> dict | None:
        """The customer this flow made or found for `client` in an earlier run, read by id (consistent), if it
        is still live and still linked to the client; else Stripe's search (which may lag a new customer)."""
        made = self._made.get(client)
        if made is not None:
            customer = self.stripe.get_customer(made)
            linked = (customer or {}).get("metadata") or {}
            if customer and not customer.get("deleted") and str(linked.get(self.customer_key)) == vendor_id(client):
                return customer
        return self.stripe.find_customer(self.customer_link, vendor_id(client))

    def _customer(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        company = vendor_id(write.record_id)
        found = self._known_customer(write.record_id)
        if found is not None:
            self._customers[write.record_id] = found["id"]
            return Outcome(write, Status.UNCHANGED, destination_id=found["id"], detail="customer exists")
        if dry_run:
            return Outcome(write, Status.WOULD_CREATE, detail=f"customer {write.payload['name']!r}")
        made = self.stripe.create_customer(
            name=write.payload["name"], link=self.customer_link, value=company, key=write.idempotency_key
        )
        self._customers[write.record_id] = made["id"]
        return Outcome(write, Status.CREATED, destination_id=made["id"], detail=f"customer {made['id']}")

    def _billing_customer(self, write: PlannedWrite) -> str | None:
        client = write.payload["customer_id"]
        if client not in self._customers:
            hint = write.payload.get("billing_customer_id")
            found = hint or (self._known_customer(client) or {}).get("id")
            if found:
                self._customers[client] = found
        return self._customers.get(client)

    def _invoice(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        payload: dict[str, Any] = write.payload
        deal = vendor_id(write.record_id)
        customer = self._billing_customer(write)
        if customer is None:
            if dry_run:
                return Outcome(write, Status.WOULD_CREATE, detail="invoice, for a customer created first")
            return Outcome(write, Status.FAILED, detail=f"no Stripe customer for client {payload['customer_id']}")
        existing = self.stripe.find_invoices(customer, self.deal_link, deal)
        invoice = existing[0] if existing else None
        steps: list[str] = []
        if invoice is None:
            if dry_run:
                return Outcome(write, Status.WOULD_CREATE, detail=self._describe(payload))
            invoice = self.stripe.create_invoice(
                customer=customer,
                currency=payload["currency"],
                description=payload["description"] or "",
                days_until_due=self.invoice_settings.days_until_due,
                link=self.deal_link,
                value=deal,
                key=f"{write.idempotency_key}:invoice:{customer}",
            )
            steps.append("created")
        if invoice.get("status") == "draft" and not self.stripe.has_lines(invoice):
            if dry_run:
                return Outcome(write, Status.WOULD_UPDATE, destination_id=invoice["id"], detail="add the line")
            self.stripe.add_line(
                invoice=invoice,
                amount=_sent_amount(payload),
                description=payload["description"] or "",
                link=self.deal_link,
                value=deal,
                key=f"{write.idempotency_key}:line:{invoice['id']}",
            )
            steps.append("line added")
            invoice = self.stripe.get_invoice(invoice["id"])
        if self.invoice_settings.finalize and invoice.get("status") == "draft":
            if dry_run:
                return Outcome(write, Status.WOULD_UPDATE, destination_id=invoice["id"], detail="finalize")
            invoice = self.stripe.finalize(invoice["id"], key=f"{write.idempotency_key}:finalize:{invoice['id']}")
            steps.append("finalized")
        detail = ", ".join(steps) or f"invoice exists ({invoice.get('status')})"
        if len(existing) > 1:
            detail += f"; {len(existing)} invoices link to this deal: {', '.join(i['id'] for i in existing)}"
        status = Status.UNCHANGED if not steps else Status.CREATED if "created" in steps else Status.UPDATED
        return Outcome(write, status, destination_id=invoice["id"], detail=f"{self._describe(payload)}: {detail}")

    @staticmethod
    def _describe(payload: dict[str, Any]) -> str:
        return f"invoice {payload['amount']} {payload['currency']} (minor units)"


def stripe_amount(amount: int | None, currency: object) -> int | None:
    """A canonical amount (ISO-4217 minor units) in Stripe's minor units; None when there is no amount, the
    currency is unknown, or Stripe's unit cannot hold it exactly (the contract then refuses the write)."""
    if amount is None or not isinstance(currency, str) or currency_exponent(currency) is None:
        return None
    found = to_source_minor(Money(int(amount), currency), CATALOG.minor_units("billing"))
    return found if isinstance(found, int) else None


def _sent_amount(payload: dict[str, Any]) -> int:
    """Stripe's figure for the line: computed again from amount and currency, so a write queued in the outbox
    before Stripe's units were known is sent right too."""
    found = stripe_amount(payload["amount"], payload["currency"])
    if found is None:  # the contract refuses such a write before delivery
        raise ValueError(f"invoice amount {payload['amount']} {payload['currency']} has no exact Stripe amount")
    return found
