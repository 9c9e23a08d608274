"""Money across CRM and billing: every won deal is invoiced for what was agreed, every invoice is paid by its
charges, and every charge pays an invoice that exists.

Records in the review queue still count as existing (an invoice in review for its currency still bills its
deal): the queue already tells people about them, so these checks do not report them a second time.
"""

from datetime import UTC, date, datetime, timedelta
from math import floor
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import vendor_id
from integration_assets.reconciliation.common import (
    CrossSystemCheck,
    canonical_key,
    diff_row,
    money_text,
    outcome,
    reference_sql,
    source_refs,
)
from integration_assets.reconciliation.findings import record_findings
from integration_assets.systems import CATALOG

__all__ = ["checks", "deal_invoice_problems", "invoice_payment_problems"]

INVOICES = CATALOG.stream("billing/invoices").raw_table  # Stripe invoices as landed

DEAL_KINDS = ("won_deal_without_invoice", "invoice_amount_mismatch", "invoice_currency_mismatch")
PAYMENT_KINDS = ("paid_invoice_short", "invoice_overpaid", "payment_for_missing_invoice", "payment_currency_mismatch")
DEALS_CHECK, PAYMENTS_CHECK = "won_deals_invoiced", "invoices_paid_by_payments"

# The day a won deal's grace period runs from: its close date, else the day it was created (ISO text, so it
# compares with the cutoff as text on both backends).
_DEAL_DAY = "coalesce(nullif(substr(d.close_date, 1, 10), ''), substr(CAST(d.created_at AS TEXT), 1, 10))"
_WON = "SELECT * FROM canonical.deals WHERE stage = 'won' AND NOT is_deleted"


def _first_ref(source_records: Any) -> tuple[str, str, str]:
    return source_refs(source_records)[0]


def _minor(value: Any) -> int | None:
    return None if value is None else int(value)


def deal_invoice_problems(
    warehouse: Warehouse, grace_days: float, today: date
) -> tuple[list[dict[str, Any]], int, int]:
    """Rows for won deals no live invoice bills (accepted or in review) past the grace period, and invoices that
    differ from their won deal; joined in the warehouse, so only those rows come back.

    Returns the rows, the number of uninvoiced won deals still within the grace period, and of won deals."""
    warehouse.ensure_raw_table(INVOICES)
    invoiced = reference_sql(load_dictionary(), "invoices", "deal_id", "billing", INVOICES)
    cutoff = (today - timedelta(days=floor(grace_days))).isoformat()  # age <= grace ⇔ day >= cutoff
    uninvoiced = f"""
        WITH invoiced AS ({invoiced}),
        open_deals AS (
            SELECT d.deal_id, d.amount, d.currency, d.close_date, d.source_records, {_DEAL_DAY} AS day
            FROM ({_WON}) AS d LEFT JOIN invoiced AS i ON i.ref = d.deal_id WHERE i.ref IS NULL
        )
        SELECT deal_id, amount, currency, close_date, source_records, day, NULL AS waiting, NULL AS won
        FROM open_deals WHERE day IS NULL OR day < ?
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM open_deals WHERE day >= ?),
            (SELECT count(*) FROM ({_WON}) AS w)
        ORDER BY deal_id NULLS LAST"""
    found = warehouse.query(uninvoiced, [cutoff, cutoff])
    *late, (*_, waiting, won) = found
    rows: list[dict[str, Any]] = []
    for _, amount, currency, close_date, source_records, day in (r[:6] for r in late):
        age = None if day is None else float((today - date.fromisoformat(day)).days)
        amount = _minor(amount)
        shown = "won" if amount is None else f"won {money_text(amount, currency)}"
        rows.append(
            diff_row(
                _first_ref(source_records),
                "won_deal_without_invoice",
                "invoice_id",
                f"{shown}, closed {str(close_date or '')[:10]}",
                f"no invoice after {age:g} days (grace {grace_days:g})" if age is not None else "no invoice",
                this_minor=amount,
            )
        )
    differing = warehouse.query(
        f"""SELECT i.source_records, i.total, i.currency, d.source_records, d.amount, d.currency
        FROM canonical.invoices AS i JOIN ({_WON}) AS d ON d.deal_id = i.deal_id
        WHERE NOT i.is_deleted AND (i.currency IS DISTINCT FROM d.currency
            OR (d.amount IS NOT NULL AND i.total <> d.amount))
        ORDER BY i.invoice_id"""
    )
    for invoice_refs, total, currency, deal_refs, amount, deal_currency in differing:
        total, amount = int(total), _minor(amount)
        ref, deal_ref = _first_ref(invoice_refs), _first_ref(deal_refs)
        if currency != deal_currency:
            other = deal_currency if amount is None else money_text(amount, deal_currency)
            rows.append(
                diff_row(
                    ref,
                    "invoice_currency_mismatch",
                    "currency",
                    money_text(total, currency),
                    other,
                    deal_ref,
                    this_minor=total,
                    other_minor=amount,
                )
            )
        else:
            rows.append(
                diff_row(
                    ref,
                    "invoice_amount_mismatch",
                    "total/amount",
                    money_text(total, currency),
                    money_text(int(amount), deal_currency),  # type: ignore[arg-type]  # the SQL asks amount
                    deal_ref,
                    this_minor=total,
                    other_minor=amount,
                )
            )
    return rows, int(waiting), int(won)


# A payment counts when it succeeded, in its invoice's currency, net of refunds; a charge with no invoice is a
# one-off charge, not meant for one. An invoice exists when its raw record is live (accepted or in review).
_PAYMENTS = f"""
    WITH p AS (
        SELECT payment_id, invoice_id, status, currency, amount, amount_refunded, source_records
        FROM canonical.payments WHERE NOT is_deleted AND invoice_id IS NOT NULL AND invoice_id <> ''
    ),
    i AS (
        SELECT invoice_id, status, currency, total, amount_paid, source_records
        FROM canonical.invoices WHERE NOT is_deleted
    ),
    live AS (SELECT 'billing:' || id AS invoice_id FROM {INVOICES} WHERE NOT is_deleted),
    matched AS (
        SELECT p.*, i.currency AS invoice_currency, i.total AS invoice_total, i.source_records AS invoice_records,
            i.invoice_id AS known
        FROM p JOIN live ON live.invoice_id = p.invoice_id LEFT JOIN i ON i.invoice_id = p.invoice_id
    ),
    net AS (
        SELECT invoice_id, sum(amount - coalesce(amount_refunded, 0)) AS paid FROM matched
        WHERE known IS NOT NULL AND status = 'succeeded' AND currency IS NOT DISTINCT FROM invoice_currency
        GROUP BY invoice_id
    )
    SELECT 1 AS rule, p.payment_id AS sort_id, p.source_records, p.invoice_id, NULL AS status, p.currency,
        p.amount, NULL AS other_minor, NULL AS other_currency, NULL AS other_records
    FROM p LEFT JOIN live ON live.invoice_id = p.invoice_id WHERE live.invoice_id IS NULL
    UNION ALL
    SELECT 2, payment_id, source_records, invoice_id, NULL, currency, amount, invoice_total, invoice_currency,
        invoice_records
    FROM matched WHERE known IS NOT NULL AND status = 'succeeded' AND currency IS DISTINCT FROM invoice_currency
    UNION ALL
    SELECT 3, i.invoice_id, i.source_records, i.invoice_id, i.status, i.currency,
        CASE WHEN i.status = 'paid' AND coalesce(net.paid, 0) < i.amount_paid THEN i.amount_paid ELSE i.total END,
        coalesce(net.paid, 0), NULL, NULL
    FROM i LEFT JOIN net ON net.invoice_id = i.invoice_id
    WHERE (i.status = 'paid' AND coalesce(net.paid, 0) < i.amount_paid) OR coalesce(net.paid, 0) > i.total
    UNION ALL
    SELECT 0, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM i), (SELECT count(*) FROM canonical.payments
        WHERE NOT is_deleted), NULL, NULL
    ORDER BY rule, sort_id"""


def invoice_payment_problems(warehouse: Warehouse) -> tuple[list[dict[str, Any]], int, int]:
    """Rows for paid invoices their charges do not cover, overpaid invoices, charges for no invoice and charges
    in another currency than their invoice: one statement of joins and a group-by, only those rows back.

    Returns the rows, and the numbers of live invoices and payments compared."""
    warehouse.ensure_raw_table(INVOICES)
    (_, _, _, _, _, _, invoices, payments, _, _), *found = warehouse.query(_PAYMENTS)
    rows: list[dict[str, Any]] = []
    for rule, _, records, invoice_id, status, currency, minor, other_minor, other_currency, other_records in found:
        ref, minor = _first_ref(records), int(minor)
        if rule == 1:
            missing = vendor_id(invoice_id)
            rows.append(diff_row(ref, "payment_for_missing_invoice", "invoice_id", missing, "no such invoice"))
        elif rule == 2:
            rows.append(
                diff_row(
                    ref,
                    "payment_currency_mismatch",
                    "currency",
                    money_text(minor, currency),
                    money_text(int(other_minor), other_currency),
                    _first_ref(other_records),
                    this_minor=minor,
                    other_minor=int(other_minor),
                )
            )
        elif status == "paid" and int(other_minor) < minor:  # short: `minor` is amount_paid
            rows.append(
                diff_row(
                    ref,
                    "paid_invoice_short",
                    "amount_paid vs payments",
                    f"{money_text(minor, currency)} paid",
                    f"{money_text(int(other_minor), currency)} in succeeded payments",
                    this_minor=minor,
                    other_minor=int(other_minor),
                )
            )
        else:  # overpaid: `minor` is the total
            rows.append(
                diff_row(
                    ref,
                    "invoice_overpaid",
                    "total vs payments",
                    f"{money_text(minor, currency)} total",
                    f"{money_text(int(other_minor), currency)} in succeeded payments",
                    this_minor=minor,
                    other_minor=int(other_minor),
                )
            )
    return rows, int(invoices), int(payments)


def won_deals_invoiced(warehouse: Warehouse) -> AssetCheckResult:
    grace = load_monitoring().reconciliation.won_deal_invoice_grace_days
    rows, waiting, won = deal_invoice_problems(warehouse, grace, datetime.now(UTC).date())
    return outcome(
        system="billing",
        rows=rows,
        kinds=DEAL_KINDS,
        ok_summary=f"{won} won deals: each invoiced (or within the {grace:g}-day grace), amounts and currencies agree.",
        summary="Won deals and their invoices disagree",
        next_action="For a won deal without invoice, create the invoice in Stripe (metadata.hubspot_deal_id = the "
        "deal id) or correct the deal's stage in HubSpot; for a mismatch, correct the invoice in Stripe or the "
        "deal amount/currency in HubSpot, whichever is wrong.",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"won_deals": won, "won_deals_within_grace": waiting},
        findings=record_findings(warehouse, "canonical/deals", DEALS_CHECK, rows),
    )


def invoices_paid_by_payments(warehouse: Warehouse) -> AssetCheckResult:
    rows, invoices, payments = invoice_payment_problems(warehouse)
    return outcome(
        system="billing",
        rows=rows,
        kinds=PAYMENT_KINDS,
        ok_summary=f"{invoices} invoices and {payments} payments agree.",
        summary="Invoices and payments disagree",
        next_action="Open each invoice or charge in Stripe: record the missing payment or refund the excess, "
        "and attach a charge for a missing invoice to the right invoice (or refund it).",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"invoices": invoices, "payments": payments},
        findings=record_findings(warehouse, "canonical/payments", PAYMENTS_CHECK, rows),
    )


checks = [
    CrossSystemCheck(
        name=DEALS_CHECK,
        asset=canonical_key("deals"),
        reads=(canonical_key("invoices"),),
        evaluate=won_deals_invoiced,
        description="Every closed-won deal has an invoice once the grace period from monitoring.yaml has passed, "
        "and the invoice bills the deal's amount in the deal's currency. Lists the exact deals and invoices.",
    ),
    CrossSystemCheck(
        name=PAYMENTS_CHECK,
        asset=canonical_key("payments"),
        reads=(canonical_key("invoices"),),
        evaluate=invoices_paid_by_payments,
        description="Paid invoices are covered by their succeeded payments net of refunds, no invoice is "
        "overpaid, and every payment pays an invoice that exists. Lists the exact invoices and charges.",
    ),
]
