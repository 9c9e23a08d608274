"""Tickets ↔ customers: every ticket is raised by a person the CRM knows, for a client the CRM knows.

A requester is known when the canonical person behind it is a CRM contact, or one of our own staff; a
Zendesk end-user matching no contact is a support-only person, and their tickets belong to nobody sales
knows. The client is known when the ticket resolves to a live canonical client.

A row names the ticket; for an unknown requester, the other record is the requester's own user record (the
one to link to a CRM contact), not the ticket again.
"""

from collections.abc import Mapping
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.core.warehouse import Warehouse
from integration_assets.reconciliation.common import (
    CrossSystemCheck,
    Ref,
    canonical_key,
    diff_row,
    outcome,
    source_refs,
)
from integration_assets.reconciliation.findings import record_findings

__all__ = ["checks", "ticket_problems"]

KINDS = ("unknown_requester", "unknown_organization")
STAFF_ROLE = "staff"
SUPPORT = "support"  # the requester's record to open is their Zendesk user


def _person_record(person: Mapping[str, Any] | None) -> Ref | None:
    """The requester's own record (their Zendesk user, else the first source record), when they are known."""
    refs = source_refs(person.get("source_records")) if person else []
    return next((ref for ref in refs if ref[0] == SUPPORT), refs[0] if refs else None)


# A requester is known when the person is live and a CRM contact, or staff; a ticket's client when it is live.
_TICKETS = f"""
    WITH t AS (
        SELECT ticket_id, requester_id, customer_id, source_records FROM canonical.tickets WHERE NOT is_deleted
    ),
    known AS (
        SELECT DISTINCT person_id FROM canonical.contacts
        WHERE NOT is_deleted AND ((contact_id IS NOT NULL AND contact_id <> '') OR role = '{STAFF_ROLE}')
    ),
    clients AS (SELECT DISTINCT customer_id FROM canonical.customers WHERE NOT is_deleted)
    SELECT 1 AS rule, t.ticket_id, t.source_records, t.requester_id, p.person_id, p.is_deleted, p.role,
        p.source_records AS person_records
    FROM t LEFT JOIN known AS k ON k.person_id = t.requester_id
        LEFT JOIN canonical.contacts AS p ON p.person_id = t.requester_id
    WHERE k.person_id IS NULL
    UNION ALL
    SELECT 2, t.ticket_id, t.source_records, t.customer_id, NULL, NULL, NULL, NULL
    FROM t LEFT JOIN clients AS c ON c.customer_id = t.customer_id WHERE c.customer_id IS NULL
    UNION ALL
    SELECT 0, NULL, NULL, NULL, NULL, NULL, NULL, CAST((SELECT count(*) FROM t) AS TEXT)
    ORDER BY rule, ticket_id"""


def ticket_problems(warehouse: Warehouse) -> tuple[list[dict[str, Any]], int]:
    """Rows for tickets whose requester is no CRM person (nor staff), or whose client is unknown: joined in the
    warehouse, only those tickets come back. Returns the rows and the number of live tickets."""
    (*_, tickets), *found = warehouse.query(_TICKETS)
    rows: list[dict[str, Any]] = []
    for rule, _, records, value, person_id, is_deleted, role, person_records in found:
        ref = source_refs(records)[0]
        if rule == 1:
            person = None if person_id is None else {"is_deleted": is_deleted, "role": role}
            shown = "(none)" if not value else f"{value} ({_requester_state(person)})"
            other = _person_record({"source_records": person_records} if person else None)
            rows.append(diff_row(ref, "unknown_requester", "requester_id", shown, "no CRM contact", other))
        else:
            rows.append(diff_row(ref, "unknown_organization", "customer_id", value or "(none)", "no known client"))
    return rows, int(tickets)


def _requester_state(person: Mapping[str, Any] | None) -> str:
    if person is None:
        return "no such person"
    if person["is_deleted"]:
        return "deleted"
    return f"{person['role'] or 'person'} without contact"


def tickets_known_people(warehouse: Warehouse) -> AssetCheckResult:
    rows, tickets = ticket_problems(warehouse)
    return outcome(
        system="support",
        rows=rows,
        kinds=KINDS,
        ok_summary=f"{tickets} tickets: every requester is a CRM contact or staff, every client known.",
        summary="Tickets from people or organizations the CRM does not know",
        next_action="For an unknown requester, add the person as a contact in HubSpot (or set the Zendesk user's "
        "external_id to their contact id); for an unknown organization, link the Zendesk organization to its "
        "HubSpot company (external_id).",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"tickets": tickets},
        findings=record_findings(warehouse, "canonical/tickets", "tickets_known_people", rows),
    )


checks = [
    CrossSystemCheck(
        name="tickets_known_people",
        asset=canonical_key("tickets"),
        reads=(canonical_key("customers"),),
        evaluate=tickets_known_people,
        description="Every live ticket's requester is a CRM contact (or our staff) and its organization a known "
        "client. Lists the exact tickets.",
    )
]
