"""Tickets ↔ customers: every ticket is raised by a person the CRM knows, for a client the CRM knows.

A requester is known when the canonical person behind it is a CRM contact, or one of our own staff; a
Zendesk end-user matching no contact is a support-only person, and their tickets belong to nobody sales
knows. The client is known when the ticket resolves to a live canonical client.

A row names the ticket; for an unknown requester, the other record is the requester's own user record (the
one to link to a CRM contact), not the ticket again.
"""

from collections.abc import Iterable, Mapping
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

__all__ = ["checks", "ticket_problems"]

KINDS = ("unknown_requester", "unknown_organization")
STAFF_ROLE = "staff"
SUPPORT = "support"  # the requester's record to open is their Zendesk user


def _person_record(person: Mapping[str, Any] | None) -> Ref | None:
    """The requester's own record (their Zendesk user, else the first source record), when they are known."""
    refs = source_refs(person.get("source_records")) if person else []
    return next((ref for ref in refs if ref[0] == SUPPORT), refs[0] if refs else None)


def ticket_problems(
    tickets: Iterable[Mapping[str, Any]], people: Iterable[Mapping[str, Any]], customer_ids: set[str]
) -> list[dict[str, Any]]:
    """Rows for tickets whose requester is no CRM person (nor staff), or whose client is unknown."""
    people = list(people)
    by_id = {p["person_id"]: p for p in people}
    known_people = {
        p["person_id"]: p for p in people if not p["is_deleted"] and (p["contact_id"] or p["role"] == STAFF_ROLE)
    }
    rows: list[dict[str, Any]] = []
    for ticket in tickets:
        ref = source_refs(ticket["source_records"])[0]
        requester = ticket["requester_id"]
        if requester not in known_people:
            person = by_id.get(requester)
            shown = "(none)" if not requester else f"{requester} ({_requester_state(person)})"
            rows.append(
                diff_row(ref, "unknown_requester", "requester_id", shown, "no CRM contact", _person_record(person))
            )
        customer = ticket["customer_id"]
        if customer not in customer_ids:
            rows.append(diff_row(ref, "unknown_organization", "customer_id", customer or "(none)", "no known client"))
    return rows


def _requester_state(person: Mapping[str, Any] | None) -> str:
    if person is None:
        return "no such person"
    if person["is_deleted"]:
        return "deleted"
    return f"{person['role'] or 'person'} without contact"


def tickets_known_people(warehouse: Warehouse) -> AssetCheckResult:
    tickets = warehouse.records(
        "SELECT ticket_id, requester_id, customer_id, source_records FROM canonical.tickets WHERE NOT is_deleted"
    )
    people = warehouse.records("SELECT person_id, contact_id, role, is_deleted, source_records FROM canonical.contacts")
    customers = {r[0] for r in warehouse.query("SELECT customer_id FROM canonical.customers WHERE NOT is_deleted")}
    rows = ticket_problems(tickets, people, customers)
    return outcome(
        system="support",
        rows=rows,
        kinds=KINDS,
        ok_summary=f"{len(tickets)} tickets: every requester is a CRM contact or staff, every client known.",
        summary="Tickets from people or organizations the CRM does not know",
        next_action="For an unknown requester, add the person as a contact in HubSpot (or set the Zendesk user's "
        "external_id to their contact id); for an unknown organization, link the Zendesk organization to its "
        "HubSpot company (external_id).",
        severity=AssetCheckSeverity.ERROR,
        extra_counts={"tickets": len(tickets)},
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
