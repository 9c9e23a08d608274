"""The reconciliation rules the planted defects do not reach: the grace period, overpayment, currencies that
differ, a ticket for an unknown client, records in review that still count, master data that agrees once
normalized. Canonical rows as the canonical tables hold them, written to a real warehouse (DuckDB and
PostgreSQL), through the rules' SQL; and the findings table that keeps every record at fault across evaluations."""

from __future__ import annotations

from datetime import date

import pandas as pd

from integration_assets.canonical.assets import RECORD_MAP, RECORD_MAP_COLUMNS
from integration_assets.canonical.build import table_columns
from integration_assets.core.evidence import mask
from integration_assets.core.warehouse import RawRow, Warehouse
from integration_assets.mapping import normalize
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.reconciliation.billing import (
    INVOICES,
    deal_invoice_problems,
    invoice_payment_problems,
    invoices_paid_by_payments,
)
from integration_assets.reconciliation.customers import customer_master_agrees, master_data_problems
from integration_assets.reconciliation.findings import FINDINGS_TABLE, open_findings, record_findings
from integration_assets.reconciliation.tickets import ticket_problems
from integration_assets.systems import CATALOG

TODAY = date(2026, 11, 26)


def deal(deal_id: str, close_date: str, amount: int = 10_000, currency: str = "EUR") -> dict:
    return {
        "deal_id": f"crm:{deal_id}",
        "amount": amount,
        "currency": currency,
        "stage": "won",
        "close_date": close_date,
        "created_at": None,
        "is_deleted": False,
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
        "is_deleted": False,
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
        "is_deleted": False,
        "source_records": f"billing/charges/{payment_id}",
    }


def stripe_invoice(invoice_id: str, deal_id: str | None) -> RawRow:
    """An invoice as landed in the raw table (`metadata.hubspot_deal_id` names its deal)."""
    metadata = {"hubspot_deal_id": deal_id} if deal_id is not None else {}
    return RawRow(invoice_id, 1, {"id": invoice_id, "object": "invoice", "metadata": metadata})


def load(
    url: str,
    deals: list[dict] = (),  # type: ignore[assignment]
    invoices: list[dict] = (),  # type: ignore[assignment]
    payments: list[dict] = (),  # type: ignore[assignment]
    raw_invoices: list[RawRow] = (),  # type: ignore[assignment]
    **others: list[dict],
) -> Warehouse:
    """The canonical tables as the canonical build lays them out, holding exactly these rows; the raw invoices
    (live ones count as existing, accepted or in review) beside them."""
    warehouse = Warehouse.from_url(url)
    warehouse.ensure_ops_tables()
    warehouse.ensure_raw_table(INVOICES)
    dictionary = load_dictionary()
    with warehouse.transaction() as tx:
        for entity, rows in (("deals", deals), ("invoices", invoices), ("payments", payments), *others.items()):
            columns = table_columns(dictionary, entity)
            frame = pd.DataFrame([{name: row.get(name) for name in columns} for row in rows], columns=list(columns))
            tx.replace_table(f"canonical.{entity}", columns, frame)
        if raw_invoices:
            tx.upsert_raw(INVOICES, list(raw_invoices), "test")
    return warehouse


def listed(rows: list[dict]) -> set[tuple[str, str]]:
    return {(row["id"], row["problem"]) for row in rows}


def test_a_won_deal_waits_out_its_grace_period_before_it_is_reported(warehouse_url: str) -> None:
    won = [deal("1", "2026-11-20"), deal("2", "2026-11-10"), deal("3", "2026-11-01"), deal("4", "2026-11-19")]
    # deal 3 is billed by an invoice in review (no canonical row, a live raw record); deal 4's only invoice is
    # deleted at Stripe
    deleted = RawRow("in_gone", 2, {"id": "in_gone", "metadata": {"hubspot_deal_id": "4"}}, is_deleted=True)
    warehouse = load(warehouse_url, deals=won, raw_invoices=[stripe_invoice("in_review", "3"), deleted])
    rows, waiting, count = deal_invoice_problems(warehouse, grace_days=7, today=TODAY)
    assert listed(rows) == {("2", "won_deal_without_invoice")}  # 16 days; deals 1 and 4 are young, deal 3 billed
    assert (waiting, count) == (2, 4)
    (row,) = rows
    assert (row["this_side"], row["other_side"]) == (
        "won 100.00 EUR, closed 2026-11-10",
        "no invoice after 16 days (grace 7)",
    )
    assert row["this_minor"] == 10_000


def test_an_invoice_in_another_currency_is_a_currency_mismatch_not_an_amount_one(warehouse_url: str) -> None:
    won = [deal("1", "2026-09-01", 10_000, "EUR"), deal("2", "2026-09-01", 10_000, "EUR")]
    invoices = [invoice("in_a", "1", 10_000, "USD"), invoice("in_b", "2", 9_999, "EUR"), invoice("in_c", "2", 10_000)]
    raw = [stripe_invoice("in_a", "1"), stripe_invoice("in_b", "2"), stripe_invoice("in_c", "2")]
    warehouse = load(warehouse_url, deals=won, invoices=invoices, raw_invoices=raw)
    rows, waiting, _ = deal_invoice_problems(warehouse, grace_days=7, today=TODAY)
    assert listed(rows) == {("in_a", "invoice_currency_mismatch"), ("in_b", "invoice_amount_mismatch")}
    by_id = {row["id"]: row for row in rows}
    assert (by_id["in_a"]["this_side"], by_id["in_a"]["other_side"]) == ("100.00 USD", "100.00 EUR")
    assert (by_id["in_b"]["this_minor"], by_id["in_b"]["other_minor"]) == (9_999, 10_000)
    assert by_id["in_b"]["other_record"] == "crm/deals/2"
    assert waiting == 0


def test_payments_count_net_of_refunds_in_the_invoice_currency(warehouse_url: str) -> None:
    invoices = [
        invoice("in_over", None, 5_000, status="paid", amount_paid=5_000),
        invoice("in_short", None, 5_000, status="paid", amount_paid=5_000),
        invoice("in_ok", None, 5_000, status="paid", amount_paid=5_000),
    ]
    failed = {**payment("ch_7", "in_short", 1_000), "status": "failed"}  # a failed charge pays nothing
    payments = [
        payment("ch_1", "in_over", 6_000),
        payment("ch_2", "in_short", 5_000, refunded=1_000),
        payment("ch_3", "in_ok", 3_000),
        payment("ch_4", "in_ok", 2_000),
        payment("ch_5", "in_ok", 2_000, currency="USD"),
        payment("ch_6", "in_gone", 700),
        payment("ch_8", "in_review", 900),  # its invoice is in the review queue: it exists, the queue reports it
        failed,
        {**payment("ch_9", "x", 100), "invoice_id": None},  # a one-off charge
    ]
    raw = [stripe_invoice(i, None) for i in ("in_over", "in_short", "in_ok", "in_review")]
    warehouse = load(warehouse_url, invoices=invoices, payments=payments, raw_invoices=raw)
    rows, invoice_count, payment_count = invoice_payment_problems(warehouse)
    assert listed(rows) == {
        ("in_over", "invoice_overpaid"),
        ("in_short", "paid_invoice_short"),
        ("ch_5", "payment_currency_mismatch"),
        ("ch_6", "payment_for_missing_invoice"),
    }
    assert (invoice_count, payment_count) == (3, 9)
    by_id = {row["id"]: row for row in rows}
    assert (by_id["in_short"]["this_side"], by_id["in_short"]["other_side"]) == (
        "50.00 EUR paid",
        "40.00 EUR in succeeded payments",
    )
    assert (by_id["in_over"]["this_minor"], by_id["in_over"]["other_minor"]) == (5_000, 6_000)
    assert by_id["ch_5"]["other_record"] == "billing/invoices/in_ok"
    assert (by_id["ch_6"]["this_side"], by_id["ch_6"]["other_side"]) == ("in_gone", "no such invoice")


def test_findings_keep_first_seen_resolve_what_is_gone_and_name_only_the_new(warehouse_url: str) -> None:
    """Each evaluation upserts what it found and resolves what it no longer finds; the check's metadata counts
    new, persisting and resolved findings and names only the new ones."""
    invoices = [invoice(f"in_{n}", None, 5_000, status="paid", amount_paid=5_000) for n in range(3)]
    raw = [stripe_invoice(f"in_{n}", None) for n in range(3)]
    warehouse = load(warehouse_url, invoices=invoices, payments=[payment("ch_0", "in_0", 5_000)], raw_invoices=raw)
    first = invoices_paid_by_payments(warehouse).metadata
    assert (first["new_findings"].value, first["persisting_findings"].value, first["resolved_findings"].value) == (
        2,
        0,
        0,
    )
    assert FINDINGS_TABLE in first["summary"].value and first["findings_table"].value == FINDINGS_TABLE
    stored = {f["record_id"]: f for f in open_findings(warehouse, "invoices_paid_by_payments")}
    assert set(stored) == {"in_1", "in_2"}
    assert stored["in_1"]["asset"] == "canonical/payments" and stored["in_1"]["other_minor"] == 0

    again = invoices_paid_by_payments(warehouse).metadata  # the same findings: nothing new
    assert (again["new_findings"].value, again["persisting_findings"].value) == (0, 2)
    assert again["new_records"].value == ""
    assert "0 new since the last evaluation; 2 persisting" in again["summary"].value
    kept = {f["record_id"]: f for f in open_findings(warehouse, "invoices_paid_by_payments")}
    assert kept["in_1"]["first_seen"] == stored["in_1"]["first_seen"]
    assert kept["in_1"]["last_seen"] >= stored["in_1"]["last_seen"] and kept["in_1"]["evaluations"] == 2

    # in_1 gets paid, in_0 loses its payment: one resolved, one new, one persisting, and only the new one named
    load(
        warehouse_url,
        invoices=invoices,
        payments=[payment("ch_1", "in_1", 5_000)],
        raw_invoices=raw,
    )
    third = invoices_paid_by_payments(warehouse).metadata
    assert (third["new_findings"].value, third["persisting_findings"].value, third["resolved_findings"].value) == (
        1,
        1,
        1,
    )
    assert third["new_records"].value == "billing/invoices/in_0"
    assert "1 new since the last evaluation: billing/invoices/in_0;" in third["summary"].value
    assert {f["record_id"] for f in open_findings(warehouse, "invoices_paid_by_payments")} == {"in_0", "in_2"}
    (resolved,) = warehouse.records(
        f"SELECT record_id, status, resolved_at FROM {FINDINGS_TABLE} WHERE status = 'resolved'"
    )
    assert resolved["record_id"] == "in_1" and resolved["resolved_at"] is not None

    # a finding that comes back after being resolved is new again, with a new first_seen
    load(warehouse_url, invoices=invoices, payments=[], raw_invoices=raw)
    fourth = invoices_paid_by_payments(warehouse).metadata
    assert (fourth["new_findings"].value, fourth["persisting_findings"].value) == (1, 2)
    back = {f["record_id"]: f for f in open_findings(warehouse, "invoices_paid_by_payments")}
    assert back["in_1"]["first_seen"] > stored["in_1"]["first_seen"] and back["in_1"]["evaluations"] == 1

    # a passing evaluation resolves every open finding of its check, and only of its check
    record_findings(warehouse, "canonical/deals", "won_deals_invoiced", [])
    assert len(open_findings(warehouse, "invoices_paid_by_payments")) == 3
    load(warehouse_url, invoices=[], payments=[], raw_invoices=raw)
    passing = invoices_paid_by_payments(warehouse)
    assert passing.passed and passing.metadata["resolved_findings"].value == 3
    assert open_findings(warehouse) == []
    # a passing check says how many it resolved, then nothing more while it stays clean
    assert passing.metadata["summary"].value.endswith(
        f"3 resolved since the last evaluation (their history is in {FINDINGS_TABLE})."
    )
    quiet = invoices_paid_by_payments(warehouse)
    assert quiet.passed and quiet.metadata["resolved_findings"].value == 0
    assert "since the last evaluation" not in quiet.metadata["summary"].value


def test_a_ticket_for_an_unknown_client_or_from_a_stranger_is_listed_but_staff_are_known(warehouse_url: str) -> None:
    people = [
        {"person_id": "crm:20", "contact_id": "20", "role": "end-user", "is_deleted": False},
        {"person_id": "support:7", "contact_id": None, "role": "staff", "is_deleted": False},
        {
            "person_id": "support:8",
            "contact_id": None,
            "role": "end-user",
            "is_deleted": False,
            "source_records": "support/users/8",
        },
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
    for ticket in tickets:
        ticket["is_deleted"] = False
    clients = [{"customer_id": "crm:1", "is_deleted": False}, {"customer_id": "crm:9", "is_deleted": True}]
    warehouse = load(warehouse_url, tickets=tickets, contacts=people, customers=clients)
    rows, count = ticket_problems(warehouse)
    assert count == 5
    by_ticket = {(row["id"], row["problem"]): row for row in rows}
    stranger = by_ticket[("3", "unknown_requester")]
    assert (stranger["this_side"], stranger["other_record"]) == (
        "support:8 (end-user without contact)",
        "support/users/8",
    )
    assert by_ticket[("5", "unknown_requester")]["this_side"] == "crm:21 (deleted)"
    assert by_ticket[("5", "unknown_organization")]["this_side"] == "(none)"
    assert listed(rows) == {
        ("3", "unknown_requester"),
        ("4", "unknown_organization"),
        ("5", "unknown_requester"),
        ("5", "unknown_organization"),
    }


def placed(entity: str, row_id: str, members: list[tuple[str, str, str, dict, bool]], **row) -> tuple[dict, list]:
    """A canonical row of `entity` (customers: `customer_id`, contacts: `person_id`) kept from `members`
    (system, object_type, vendor id, payload, deleted at the vendor), as the canonical build places them: the
    row's `source_records`, each member's raw record and its line in `canonical.record_map`."""
    key = "customer_id" if entity == "customers" else "person_id"
    canonical = {
        key: row_id,
        "is_deleted": row.pop("is_deleted", False),
        "source_records": ", ".join(f"{system}/{object_type}/{rid}" for system, object_type, rid, _, _ in members),
        **row,
    }
    records = [
        (
            (system, object_type),
            RawRow(rid, 1, payload, is_deleted=deleted),
            {
                "asset": "canonical/customers",
                "system": system,
                "object_type": object_type,
                "record_id": rid,
                "table_name": f"canonical.{entity}",
                "canonical_id": row_id,
                "matched_by": "own",
            },
        )
        for system, object_type, rid, payload, deleted in members
    ]
    return canonical, records


def load_master(url: str, placements: list[tuple[str, tuple[dict, list]]], in_review: list[tuple]) -> Warehouse:
    """The canonical clients and people of `placements`, their raw records and record map; `in_review` are raw
    records (stream, RawRow) the build placed nowhere (the review queue holds them)."""
    rows: dict[str, list[dict]] = {"customers": [], "contacts": []}
    raw: dict[tuple[str, str], list[RawRow]] = {}
    mapped: list[dict] = []
    for entity, (canonical, records) in placements:
        rows[entity].append(canonical)
        for stream, record, line in records:
            raw.setdefault(stream, []).append(record)
            mapped.append(line)
    for stream, record in in_review:
        raw.setdefault(stream, []).append(record)
    warehouse = load(url, **rows)
    warehouse.ensure_table(RECORD_MAP, RECORD_MAP_COLUMNS)
    for stream in raw:
        warehouse.ensure_raw_table(CATALOG.stream_of(*stream).raw_table)
    with warehouse.transaction() as tx:
        tx.execute(f"DELETE FROM {RECORD_MAP}")
        tx.append(RECORD_MAP, mapped)
        for stream, records in raw.items():
            tx.upsert_raw(CATALOG.stream_of(*stream).raw_table, records, "test")
    return warehouse


def company(rid: str, name: object, deleted: bool = False) -> tuple[str, str, str, dict, bool]:
    return ("crm", "companies", rid, {"id": rid, "properties": {"name": name}}, deleted)


def organization(rid: str, name: object, deleted: bool = False) -> tuple[str, str, str, dict, bool]:
    return ("support", "organizations", rid, {"id": int(rid), "name": name, "external_id": "1"}, deleted)


def stripe_customer(rid: str, name: object, deleted: bool = False) -> tuple[str, str, str, dict, bool]:
    return ("billing", "customers", rid, {"id": rid, "name": name}, deleted)


def contact(rid: str, email: str, phone: str) -> tuple[str, str, str, dict, bool]:
    return ("crm", "contacts", rid, {"id": rid, "properties": {"email": email, "phone": phone}}, False)


def user(rid: str, email: object, phone: object, deleted: bool = False) -> tuple[str, str, str, dict, bool]:
    return ("support", "users", rid, {"id": int(rid), "email": email, "phone": phone}, deleted)


SWITCHBOARD = 30  # people whose records all carry the same two spellings of one number


def test_master_data_agrees_after_normalizing_each_distinct_value_once(warehouse_url: str) -> None:
    """Names differing in case or spacing, emails in case, phones in format agree; only what differs once
    normalized is listed, against the owner's record. Live records of live rows only: a record in review, one
    deleted at its vendor and a deleted row are not compared; nor a value that is no text, empty or invalid."""
    people = [
        placed(
            "contacts",
            f"crm:{n}",
            [
                contact(str(n), f"p{n}@x.example", "+442079460123"),
                user(str(1000 + n), f"p{n}@x.example", "+44 20 7946 0123"),
            ],
        )
        for n in range(100, 100 + SWITCHBOARD)
    ]
    placements = [
        (
            "customers",
            placed(
                "customers",
                "crm:1",
                [
                    company("1", "Acme  Ltd"),
                    stripe_customer("cus_1", " acme ltd"),  # case and spacing: the same name
                    organization("11", "Acme Old Ltd"),  # differs
                    organization("15", "Acme Gone", deleted=True),  # deleted at Zendesk: not compared
                ],
            ),
        ),
        (
            "customers",
            placed(
                "customers",
                "crm:2",
                [
                    company("2", "Beta"),
                    stripe_customer("cus_2", 42),
                    organization("12", "Beta"),  # 42 is no name
                ],
            ),
        ),
        ("customers", placed("customers", "crm:3", [company("3", " "), stripe_customer("cus_3", "Gamma")])),
        (
            "customers",
            placed("customers", "crm:4", [company("4", "Delta"), organization("14", "Other")], is_deleted=True),
        ),
        (
            "contacts",
            placed(
                "contacts",
                "crm:20",
                [
                    contact("20", "ann@x.example", "+442079460123"),
                    user("30", "Ann@X.example ", "+44 20 7946 0123"),  # the same address and number
                    user("44", "old@x.example", "+15550000000", deleted=True),  # deleted at Zendesk: not compared
                ],
            ),
        ),
        (
            "contacts",
            placed(
                "contacts",
                "crm:40",
                [
                    contact("40", "bob@y.example", "+442079460123"),
                    user("41", "someone.else@elsewhere.example", "+44 20 7946 0999"),  # both differ
                ],
            ),
        ),
        (
            "contacts",
            placed(
                "contacts",
                "crm:42",
                [
                    contact("42", "carl@z.example", "+442079460123"),
                    user("43", "not-an-email", ["+44 20 7946 0999"]),  # an invalid address, and a list: not compared
                ],
            ),
        ),
        *(("contacts", person) for person in people),
    ]
    in_review = [
        (("billing", "customers"), RawRow("cus_9", 1, {"id": "cus_9", "name": "Wrong Name"})),
        (("support", "users"), RawRow("45", 1, {"id": 45, "email": "x@elsewhere.example", "phone": None})),
    ]
    warehouse = load_master(warehouse_url, placements, in_review)
    phones_before = normalize._phone_text.cache_info()
    rows = master_data_problems(warehouse, load_dictionary())
    phones_after = normalize._phone_text.cache_info()
    # three distinct numbers (+442079460123, +44 20 7946 0123, +44 20 7946 0999), each normalized once, however
    # many records carry them; the equal emails of the switchboard people were never normalized at all
    assert (phones_after.hits + phones_after.misses) - (phones_before.hits + phones_before.misses) == 3
    assert listed(rows) == {("11", "name_differs"), ("41", "email_differs"), ("41", "phone_differs")}
    by_key = {(row["id"], row["problem"]): row for row in rows}
    name = by_key[("11", "name_differs")]
    assert (name["system"], name["object_type"], name["field"]) == ("support", "organizations", "customers.name")
    assert (name["this_side"], name["other_side"], name["other_record"]) == (
        "Acme Old Ltd",
        "Acme  Ltd",
        "crm/companies/1",
    )
    email = by_key[("41", "email_differs")]
    assert (email["this_side"], email["other_side"]) == (mask("someone.else@elsewhere.example"), mask("bob@y.example"))
    assert email["other_record"] == "crm/contacts/40"
    phone = by_key[("41", "phone_differs")]
    assert (phone["this_side"], phone["other_side"]) == (mask("+442079460999"), mask("+442079460123"))

    result = customer_master_agrees(warehouse)
    assert not result.passed
    metadata = result.metadata
    assert (metadata["name_differs"].value, metadata["email_differs"].value, metadata["phone_differs"].value) == (
        1,
        1,
        1,
    )
    assert metadata["records_compared"].value == 6 + SWITCHBOARD  # live rows of several records; crm:4 is deleted
    stored = {(f["record_id"], f["problem"]) for f in open_findings(warehouse, "customer_master_agrees")}
    assert stored == listed(rows)
    assert "someone.else" not in str(open_findings(warehouse, "customer_master_agrees"))
