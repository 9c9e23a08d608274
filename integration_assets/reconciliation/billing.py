"""Money across CRM and billing: every won deal is invoiced for what was agreed, every invoice is paid by its
charges, and every charge pays an invoice that exists.

Records in the review queue still count as existing (an invoice in review for its currency still bills its
deal): the queue already tells people about them, so these checks do not report them a second time.
"""

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import namespaced_id, vendor_id
from integration_assets.reconciliation.common import (
    CrossSystemCheck,
    canonical_key,
    diff_row,
    live_raw,
    money_text,
    outcome,
    raw_reference_ids,
    source_refs,
)
from integration_assets.systems import CATALOG

__all__ = ["checks", "deal_invoice_problems", "invoice_payment_problems"]

INVOICES = CATALOG.stream("billing/invoices").raw_table  # Stripe invoices as landed

DEAL_KINDS = ("won_deal_without_invoice", "invoice_amount_mismatch", "invoice_currency_mismatch")
PAYMENT_KINDS = ("paid_invoice_short", "invoice_overpaid", "payment_for_missing_invoice", "payment_currency_mismatch")


def _age_days(day: Any, today: date) -> float | None:
    if day is None:
        return None
    if isinstance(day, datetime):
        day = day.date()
    elif isinstance(day, str):
        day = date.fromisoformat(day[:10])
    elif hasattr(day, "date"):  # pandas Timestamp
        day = day.date()
    return float((today - day).days)


def deal_invoice_problems(
    won_deals: list[dict], invoices: list[dict], invoiced_deal_ids: set[str], grace_days: float, today: date
) -> tuple[list[dict[str, Any]], int]:
    """Rows for won deals without any invoice past the grace period, and invoices that differ from their deal.

    `invoiced_deal_ids` are the deals any live invoice bills, accepted or in review. Returns the rows and
    the number of uninvoiced won deals still within the grace period."""
    rows: list[dict[str, Any]] = []
    waiting = 0
    for deal in won_deals:
        if deal["deal_id"] in invoiced_deal_ids:
            continue
        age = _age_days(deal["close_date"] or deal["created_at"], today)
        if age is not None and age <= grace_days:
            waiting += 1
            continue
        ref = source_refs(deal["source_records"])[0]
        amount = None if deal["amount"] is None else int(deal["amount"])
        won = "won" if amount is None else f"won {money_text(amount, deal['currency'])}"
        rows.append(
            diff_row(
                ref,
                "won_deal_without_invoice",
                "invoice_id",
                f"{won}, closed {str(deal['close_date'] or '')[:10]}",
                f"no invoice after {age:g} days (grace {grace_days:g})" if age is not None else "no invoice",
                this_minor=amount,
            )
        )
    deals = {d["deal_id"]: d for d in won_deals}
    for invoice in invoices:
        deal = deals.get(invoice["deal_id"])
        if deal is None:
            continue
        ref = source_refs(invoice["source_records"])[0]
        deal_ref = source_refs(deal["source_records"])[0]
        total, amount = int(invoice["total"]), None if deal["amount"] is None else int(deal["amount"])
        if invoice["currency"] != deal["currency"]:
            rows.append(
                diff_row(
                    ref,
                    "invoice_currency_mismatch",
                    "currency",
                    money_text(total, invoice["currency"]),
                    deal["currency"] if amount is None else money_text(amount, deal["currency"]),
                    deal_ref,
                    this_minor=total,
                    other_minor=amount,
                )
            )
        elif amount is not None and total != amount:
            rows.append(
                diff_row(
                    ref,
                    "invoice_amount_mismatch",
                    "total/amount",
                    money_text(total, invoice["currency"]),
                    money_text(amount, deal["currency"]),
                    deal_ref,
                    this_minor=total,
                    other_minor=amount,
                )
            )
    return rows, waiting


def invoice_payment_problems(
    invoices: list[dict], payments: list[dict], existing_invoice_ids: set[str]
) -> list[dict[str, Any]]:
    """Rows for paid invoices their charges do not cover, overpaid invoices, and charges for no invoice.

    A payment counts when it succeeded, net of refunds, in the invoice's currency."""
    rows: list[dict[str, Any]] = []
    by_id = {i["invoice_id"]: i for i in invoices}
    net: dict[str, int] = defaultdict(int)
    for payment in payments:
        invoice_id = payment["invoice_id"]
        if not invoice_id:
            continue  # a one-off charge, not meant for an invoice
        ref = source_refs(payment["source_records"])[0]
        if invoice_id not in existing_invoice_ids:
            rows.append(
                diff_row(ref, "payment_for_missing_invoice", "invoice_id", vendor_id(invoice_id), "no such invoice")
            )
            continue
        invoice = by_id.get(invoice_id)
        if invoice is None or payment["status"] != "succeeded":
            continue  # its invoice is in review: the queue reports it
        if payment["currency"] != invoice["currency"]:
            rows.append(
                diff_row(
                    ref,
                    "payment_currency_mismatch",
                    "currency",
                    money_text(int(payment["amount"]), payment["currency"]),
                    money_text(int(invoice["total"]), invoice["currency"]),
                    source_refs(invoice["source_records"])[0],
                    this_minor=int(payment["amount"]),
                    other_minor=int(invoice["total"]),
                )
            )
            continue
        net[invoice_id] += int(payment["amount"]) - int(payment["amount_refunded"] or 0)
    for invoice in invoices:
        paid = net.get(invoice["invoice_id"], 0)
        ref = source_refs(invoice["source_records"])[0]
        currency = invoice["currency"]
        if invoice["status"] == "paid" and paid < int(invoice["amount_paid"]):
            rows.append(
                diff_row(
                    ref,
                    "paid_invoice_short",
                    "amount_paid vs payments",
                    f"{money_text(int(invoice['amount_paid']), currency)} paid",
                    f"{money_text(paid, currency)} in succeeded payments",
                    this_minor=int(invoice["amount_paid"]),
                    other_minor=paid,
                )
            )
        elif paid > int(invoice["total"]):
            rows.append(
                diff_row(
                    ref,
                    "invoice_overpaid",
                    "total vs payments",
                    f"{money_text(int(invoice['total']), currency)} total",
                    f"{money_text(paid, currency)} in succeeded payments",
                    this_minor=int(invoice["total"]),
                    other_minor=paid,
                )
            )
    return rows


def won_deals_invoiced(warehouse: Warehouse) -> AssetCheckResult:
    grace = load_monitoring().reconciliation.won_deal_invoice_grace_days
    won = warehouse.records(
        "SELECT deal_id, amount, currency, close_date, created_at, source_records FROM canonical.deals "
        "WHERE stage = 'won' AND NOT is_deleted"
    )
    invoices = warehouse.records(
        "SELECT invoice_id, deal_id, currency, total, source_records FROM canonical.invoices WHERE NOT is_deleted"
    )
    invoiced = raw_reference_ids(
        load_dictionary(), "invoices", "deal_id", "billing", live_raw(warehouse, INVOICES).values()
    )
    rows, waiting = deal_invoice_problems(won, invoices, invoiced, grace, datetime.now(UTC).date())
    return outcome(
        system="billing",
        rows=rows,
        kinds=DEAL_KINDS,
        ok_summary=f"{len(won)} won deals: each invoiced (or within the {grace:g}-day grace), amounts and "
        "currencies agree.",
        summary="Won deals and their invoices disagree",
        next_action="For a won deal without invoice, create the invoice in Stripe (metadata.hubspot_deal_id = the "
        "deal id) or correct the deal's stage in HubSpot; for a mismatch, correct the invoice in Stripe or the "
        "deal amount/currency in HubSpot, whichever is wrong.",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"won_deals": len(won), "won_deals_within_grace": waiting},
    )


def invoices_paid_by_payments(warehouse: Warehouse) -> AssetCheckResult:
    invoices = warehouse.records(
        "SELECT invoice_id, status, currency, total, amount_paid, source_records FROM canonical.invoices "
        "WHERE NOT is_deleted"
    )
    payments = warehouse.records(
        "SELECT payment_id, invoice_id, status, currency, amount, amount_refunded, source_records "
        "FROM canonical.payments WHERE NOT is_deleted"
    )
    existing = {namespaced_id("billing", rid) for rid in live_raw(warehouse, INVOICES)}
    rows = invoice_payment_problems(invoices, payments, existing)
    return outcome(
        system="billing",
        rows=rows,
        kinds=PAYMENT_KINDS,
        ok_summary=f"{len(invoices)} invoices and {len(payments)} payments agree.",
        summary="Invoices and payments disagree",
        next_action="Open each invoice or charge in Stripe: record the missing payment or refund the excess, "
        "and attach a charge for a missing invoice to the right invoice (or refund it).",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"invoices": len(invoices), "payments": len(payments)},
    )


checks = [
    CrossSystemCheck(
        name="won_deals_invoiced",
        asset=canonical_key("deals"),
        reads=(canonical_key("invoices"),),
        evaluate=won_deals_invoiced,
        description="Every closed-won deal has an invoice once the grace period from monitoring.yaml has passed, "
        "and the invoice bills the deal's amount in the deal's currency. Lists the exact deals and invoices.",
    ),
    CrossSystemCheck(
        name="invoices_paid_by_payments",
        asset=canonical_key("payments"),
        reads=(canonical_key("invoices"),),
        evaluate=invoices_paid_by_payments,
        description="Paid invoices are covered by their succeeded payments net of refunds, no invoice is "
        "overpaid, and every payment pays an invoice that exists. Lists the exact invoices and charges.",
    ),
]
