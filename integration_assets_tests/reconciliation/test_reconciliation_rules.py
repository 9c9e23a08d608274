"""The reconciliation rules the planted defects do not reach: the grace period, overpayment, currencies that
differ, a ticket for an unknown client. Canonical rows as the canonical tables hold them, through the rules."""

from __future__ import annotations

from datetime import date

from integration_assets.reconciliation.billing import deal_invoice_problems, invoice_payment_problems
from integration_assets.reconciliation.tickets import ticket_problems

TODAY = date(2026, 11, 26)


def deal(deal_id: str, close_date: str, amount: int = 10_000, currency: str = "EUR") -> dict:
    return {
        "deal_id": f"crm:{deal_id}",
        "amount": amount,
        "currency": currency,
        "close_date": close_date,
        "created_at": None,
        "source_records": f"crm/deals/{deal_id}",
    }


def invoice(invoice_id: str, deal_id: str | None, total: int, currency: str = "EUR", **extra) -> dict:
    return {
        "invoice_id": f"billing:{invoice_id}",
        "deal_id": f"crm:{deal_id}" if deal_id else None,
        "status": extra.get("status", "open"),
        "currency": currency,
        "total": total,
        "amount_paid": extra.get("amount_paid", 0),
        "source_records": f"billing/invoices/{invoice_id}",
    }


def payment(payment_id: str, invoice_id: str, amount: int, currency: str = "EUR", refunded: int = 0) -> dict:
    return {
        "payment_id": f"billing:{payment_id}",
        "invoice_id": f"billing:{invoice_id}",
        "status": "succeeded",
        "currency": currency,
        "amount": amount,
        "amount_refunded": refunded,
        "source_records": f"billing/charges/{payment_id}",
    }


def listed(rows: list[dict]) -> set[tuple[str, str]]:
    return {(row["id"], row["problem"]) for row in rows}


def test_a_won_deal_waits_out_its_grace_period_before_it_is_reported() -> None:
    won = [deal("1", "2026-11-20"), deal("2", "2026-11-10"), deal("3", "2026-11-01")]
    rows, waiting = deal_invoice_problems(won, [], {"crm:3"}, grace_days=7, today=TODAY)
    assert listed(rows) == {("2", "won_deal_without_invoice")}  # 16 days; deal 1 is 6 days old, deal 3 billed
    assert waiting == 1


def test_an_invoice_in_another_currency_is_a_currency_mismatch_not_an_amount_one() -> None:
    won = [deal("1", "2026-09-01", 10_000, "EUR"), deal("2", "2026-09-01", 10_000, "EUR")]
    invoices = [invoice("in_a", "1", 10_000, "USD"), invoice("in_b", "2", 9_999, "EUR")]
    rows, _ = deal_invoice_problems(won, invoices, {"crm:1", "crm:2"}, grace_days=7, today=TODAY)
    assert listed(rows) == {("in_a", "invoice_currency_mismatch"), ("in_b", "invoice_amount_mismatch")}


def test_payments_count_net_of_refunds_in_the_invoice_currency() -> None:
    invoices = [
        invoice("in_over", None, 5_000, status="paid", amount_paid=5_000),
        invoice("in_short", None, 5_000, status="paid", amount_paid=5_000),
        invoice("in_ok", None, 5_000, status="paid", amount_paid=5_000),
    ]
    payments = [
        payment("ch_1", "in_over", 6_000),
        payment("ch_2", "in_short", 5_000, refunded=1_000),
        payment("ch_3", "in_ok", 3_000),
        payment("ch_4", "in_ok", 2_000),
        payment("ch_5", "in_ok", 2_000, currency="USD"),
        payment("ch_6", "in_gone", 700),
    ]
    existing = {i["invoice_id"] for i in invoices}
    assert listed(invoice_payment_problems(invoices, payments, existing)) == {
        ("in_over", "invoice_overpaid"),
        ("in_short", "paid_invoice_short"),
        ("ch_5", "payment_currency_mismatch"),
        ("ch_6", "payment_for_missing_invoice"),
    }


def test_a_ticket_for_an_unknown_client_or_from_a_stranger_is_listed_but_staff_are_known() -> None:
    people = [
        {"person_id": "crm:20", "contact_id": "20", "role": "end-user", "is_deleted": False},
        {"person_id": "support:7", "contact_id": None, "role": "staff", "is_deleted": False},
        {"person_id": "support:8", "contact_id": None, "role": "end-user", "is_deleted": False},
        {"person_id": "crm:21", "contact_id": "21", "role": "end-user", "is_deleted": True},
    ]
    tickets = [
        {
            "ticket_id": "support:1",
            "requester_id": "crm:20",
            "customer_id": "crm:1",
            "source_records": "support/tickets/1",
        },
        {
            "ticket_id": "support:2",
            "requester_id": "support:7",
            "customer_id": "crm:1",
            "source_records": "support/tickets/2",
        },
        {
            "ticket_id": "support:3",
            "requester_id": "support:8",
            "customer_id": "crm:1",
            "source_records": "support/tickets/3",
        },
        {
            "ticket_id": "support:4",
            "requester_id": "crm:20",
            "customer_id": "crm:9",
            "source_records": "support/tickets/4",
        },
        {
            "ticket_id": "support:5",
            "requester_id": "crm:21",
            "customer_id": None,
            "source_records": "support/tickets/5",
        },
    ]
    assert listed(ticket_problems(tickets, people, {"crm:1"})) == {
        ("3", "unknown_requester"),
        ("4", "unknown_organization"),
        ("5", "unknown_requester"),
        ("5", "unknown_organization"),
    }
