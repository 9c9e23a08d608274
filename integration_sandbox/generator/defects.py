"""The defect planter: which families carry a planted defect, of which kind, and the manifest's list of them.

Defects are spread one per stride of families from their own seeded generator, so a clean family's content
does not depend on where the defects land.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from integration_sandbox.generator.vocabulary import BAD_PHONES

# kind -> (system role, vendor object type, expected outcome); the order is the planting cycle.
DEFECT_KINDS: dict[str, tuple[str, str, str]] = {
    "missing_required_field": ("crm", "contacts", "review"),
    "invalid_email": ("crm", "contacts", "review"),
    "unparseable_phone": ("crm", "contacts", "review"),
    "invalid_date": ("crm", "deals", "review"),
    "negative_amount": ("crm", "deals", "review"),
    "unknown_status_label": ("crm", "deals", "review"),
    "unknown_currency": ("billing", "invoices", "review"),
    "duplicate_record": ("crm", "companies", "review"),
    "ambiguous_owner": ("billing", "customers", "review"),
    "won_deal_without_invoice": ("crm", "deals", "reconciliation"),
    "invoice_amount_mismatch": ("billing", "invoices", "reconciliation"),
    "charge_for_missing_invoice": ("billing", "charges", "reconciliation"),
    "paid_invoice_short": ("billing", "invoices", "reconciliation"),
    "unknown_requester": ("support", "tickets", "reconciliation"),
    "target_newer_than_source": ("support", "organizations", "conflict"),
}
KINDS = tuple(DEFECT_KINDS)

CONTACT_DEFECTS = frozenset({"missing_required_field", "invalid_email", "unparseable_phone"})
DEAL_DEFECTS = frozenset({"invalid_date", "negative_amount", "unknown_status_label"})
INVOICE_DEFECTS = frozenset({"unknown_currency", "invoice_amount_mismatch", "paid_invoice_short"})
NEEDS_WON = INVOICE_DEFECTS | {"won_deal_without_invoice"}
NEEDS_ORG = frozenset({"unknown_requester", "target_newer_than_source"})


def defect_count(scale: int, rate: float) -> int:
    if rate <= 0:
        return 0
    n = round(rate * scale)
    kinds = len(KINDS)
    n = max(n, kinds) if scale >= 2 * kinds else max(n, min(kinds, scale // 2))
    return min(n, scale)


class DefectPlanter:
    """Chooses the defective families and records every defect planted, in the order they are planted."""

    def __init__(self, seed: int, scale: int, defect_rate: float) -> None:
        self.scale = scale
        self.n_defects = defect_count(scale, defect_rate)
        self._placement = random.Random(f"integration-assets/{seed}/defects")
        self.defects: list[dict[str, Any]] = []

    def plan(self) -> Iterator[tuple[str | None, int]]:
        """(kind, occurrence) for each family in turn: kind None for a clean one, occurrence counts the kind."""
        defect_index, defect_family = 0, self._defect_family(0)
        for family in range(self.scale):
            kind, occurrence = None, 0
            if family == defect_family:
                kind, occurrence = KINDS[defect_index % len(KINDS)], defect_index // len(KINDS)
                defect_index += 1
                defect_family = self._defect_family(defect_index)
            yield kind, occurrence

    def _defect_family(self, j: int) -> int:
        """Family of the j-th defect: one random family in the j-th of n equal strides (-1: none left)."""
        n = self.n_defects
        if j >= n:
            return -1
        lo = -(-j * self.scale // n)
        hi = -(-(j + 1) * self.scale // n) - 1
        return self._placement.randint(lo, hi)

    def add(self, kind: str, record_id: str | int, detail: str) -> None:
        system, object_type, expected = DEFECT_KINDS[kind]
        self.defects.append(
            {
                "kind": kind,
                "system": system,
                "object_type": object_type,
                "id": record_id,
                "expected": expected,
                "detail": detail,
            }
        )

    def bad_contact(
        self,
        kind: str,
        occurrence: int,
        contact_id: str,
        email: str,
        phone: str,
        domain: str,
    ) -> tuple[str | None, str]:
        """The contact's email and phone with the kind's defect planted in one of them."""
        local = email.split("@", 1)[0]
        if kind == "missing_required_field":
            self.add(kind, contact_id, "Contact has no email (required field is null).")
            return None, phone
        if kind == "invalid_email":
            stem = domain.rsplit(".", 1)[0]
            email = (f"{local}@@{stem}", f"{local}.{domain}", f"{local}@")[occurrence % 3]
            self.add(kind, contact_id, f"Contact email {email!r} is not a valid address.")
            return email, phone
        phone = BAD_PHONES[occurrence % len(BAD_PHONES)]
        self.add(kind, contact_id, f"Contact phone {phone!r} is not a phone number.")
        return email, phone
