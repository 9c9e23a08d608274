"""The review queue: every record that cannot be accepted without a guess, with why and what to do.

One row per (system, object type, record id, reason). Running again never duplicates an item: it counts
another occurrence. The canonical assets write the items of the records they cannot accept (found_by
`canonical/<entity>`); the source syncs write those of the records they cannot even store (found_by the
stream's key, reason `unstorable_payload`, `payload_too_large`, `refused_by_database` or `malformed_record`,
see `core/quarantine.py`). An item whose cause is gone (the source record was fixed, or a person decided in
`review_decisions.yaml`, found by `core/config.py`) resolves itself; an ignored item stays ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from integration_assets.core.config import Problem, load_config, parse_yaml
from integration_assets.core.quarantine import NEXT_ACTIONS as QUARANTINE_NEXT_ACTIONS
from integration_assets.core.quarantine import REVIEW_COLUMNS, REVIEW_KEY, REVIEW_TABLE
from integration_assets.core.warehouse import Transaction, Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import REASON_CODES as NORMALIZER_REASON_CODES
from integration_assets.mapping.schema import SYSTEM_OBJECT_TYPES, VENDORS

# Declared in core, which writes it too: the sync queues the records it cannot store (`core/quarantine.py`,
# found_by the stream's asset key) in the transaction of their chunk, and core may not import this layer.
TABLE = REVIEW_TABLE
COLUMNS = REVIEW_COLUMNS
KEY = REVIEW_KEY
REF_SQL = "system || '/' || object_type || '/' || record_id"  # a record as one text, to match a list of them


def ref_texts(refs: Iterable[tuple[str, str, str]]) -> list[str]:
    """Records as the texts `REF_SQL` makes of them, for `IN (SELECT unnest(?))` (never an empty list, whose
    element type neither backend can tell)."""
    return sorted("/".join(ref) for ref in refs) or ["/"]


NEXT_ACTIONS = {
    "missing_required_field": "fill in {field} on {object_type} {record_id} in {vendor}",
    "invalid_email": "correct the email address of {object_type} {record_id} in {vendor}",
    "unparseable_phone": "correct the phone number of {object_type} {record_id} in {vendor} (with country code)",
    "invalid_date": "correct {field} of {object_type} {record_id} in {vendor}",
    "unknown_currency": "correct the currency of {object_type} {record_id} in {vendor}",
    "invalid_amount": "correct {field} of {object_type} {record_id} in {vendor}",
    "negative_amount": "correct {field} of {object_type} {record_id} in {vendor}: it must not be negative",
    "unknown_status_label": "map the label in field_dictionary.yaml, or correct it in {vendor}",
    "duplicate_record": "merge the duplicates in {vendor}, or record a decision in review_decisions.yaml",
    "ambiguous_owner": "choose the owner in review_decisions.yaml (decision: {{owner: crm:<company id>}}), "
    "or set the external id in {vendor}",
    "contract_violation": "look at the record in {vendor}: it breaks what the vendor's API promises",
}
SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "customers": "customer",
    "invoices": "invoice",
    "charges": "charge",
    "organizations": "organization",
    "users": "user",
    "tickets": "ticket",
}


@dataclass(frozen=True)
class ReviewItem:
    system: str
    object_type: str
    record_id: str
    reason_code: str
    detail: str
    field: str = ""
    severity: str = "ERROR"

    def next_action(self) -> str:
        template = NEXT_ACTIONS.get(self.reason_code, "look at {object_type} {record_id} in {vendor}")
        return template.format(
            field=self.field or "the field",
            object_type=SINGULAR.get(self.object_type, self.object_type),
            record_id=self.record_id,
            vendor=VENDORS.get(self.system, self.system),
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.system, self.object_type, self.record_id, self.reason_code)


class Decision(BaseModel):
    """A person's answer to a review item, applied on the next run."""

    model_config = ConfigDict(extra="forbid")

    system: str
    object_type: str
    record_id: str
    reason_code: str
    owner: str | None = Field(None, description="the canonical customer this record belongs to, e.g. crm:10000012")
    keep: bool = Field(False, description="not a duplicate: accept the record as it is")
    ignore: bool = Field(False, description="leave the record out of the canonical layer, and stop asking")
    note: str = ""
    decided_by: str = ""

    @field_validator("system")
    @classmethod
    def _known_system(cls, system: str) -> str:
        if system not in VENDORS:
            raise ValueError(f"unknown system {system!r}; one of {', '.join(VENDORS)}")
        return system

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.system, self.object_type, self.record_id, self.reason_code)


class Decisions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[Decision] = []

    def for_key(self, key: tuple[str, str, str, str]) -> Decision | None:
        return next((d for d in self.decisions if d.key == key), None)


def load_decisions(path: str | Path | None = None) -> Decisions:
    """The review decisions in force (`path` for a test's own file); read again when the file changes."""
    return load_config("review_decisions.yaml", parse_decisions, path)


# Every reason code the review queue holds: the canonical layer's (its next actions, the normalizers', the
# format and merge rules', the placement ones), the sync's quarantine (core/quarantine.py) and write-back's
# (writeback/review.py, a higher floor, names them). The dictionary's identity rules add their own
# (`known_reason_codes`). A new code belongs here.
# Reasons about whose record it is: only an `owner` decision answers them, never `keep`.
PLACEMENT_REASONS = frozenset(
    {
        "ambiguous_owner",
        "unknown_external_id",
        "no_owner",
        "ambiguous_person",
        "ambiguous_reference",
        "unresolved_reference",
    }
)
REASON_CODES: frozenset[str] = frozenset(
    {
        *NEXT_ACTIONS,
        *NORMALIZER_REASON_CODES,
        *QUARANTINE_NEXT_ACTIONS,
        *PLACEMENT_REASONS,
        "invalid_format",
        "conflicting_values",
        "mixed_currencies",
        "write_rejected",
        "write_contract_violation",
        "write_conflict",
    }
)


def known_reason_codes() -> frozenset[str]:
    """`REASON_CODES` and those the field dictionary's identity rules define (an operator may add one)."""
    dictionary = load_dictionary()
    return REASON_CODES | {code for identity in dictionary.identity.values() for code in identity.review}


def parse_decisions(text: str, source: str) -> Decisions:
    """Parses and checks review_decisions.yaml; `source` names it in errors (file, line and entry)."""
    return parse_yaml(text, Decisions, source, check=check_decisions)


def check_decisions(decisions: Decisions) -> Iterator[Problem]:
    """What the schema cannot say of one decision, or of one against another.

    Each of these used to pass without a word and then do nothing, or something else than meant: a decision
    with no action, `keep` with `ignore` (which wins is an accident of the code), a misspelled reason code
    (matches no item, so the item stays open), or two decisions for one item (the first silently wins)."""
    codes = known_reason_codes() if decisions.decisions else REASON_CODES  # no dictionary read for none
    first: dict[tuple[str, str, str, str], int] = {}
    for index, decision in enumerate(decisions.decisions):
        at: tuple[Any, ...] = ("decisions", index)
        actions = [
            name
            for name, given in (
                ("owner", decision.owner is not None),
                ("keep", decision.keep),
                ("ignore", decision.ignore),
            )
            if given
        ]
        if not actions:
            yield at, "no action: say one of owner: crm:<company id>, keep: true, ignore: true"
        elif len(actions) > 1:
            yield (*at, actions[1]), f"contradictory: {' and '.join(actions)} together; a decision says one of them"
        if decision.owner is not None:
            system, _, record = decision.owner.partition(":")
            if system not in VENDORS or not record or record != record.strip():
                yield (*at, "owner"), f"owner {decision.owner!r} is not <system>:<record id> (e.g. crm:10000012)"
        object_types = SYSTEM_OBJECT_TYPES.get(decision.system, ())
        if decision.object_type not in object_types:
            known = ", ".join(object_types)
            yield (
                (*at, "object_type"),
                f"unknown object type {decision.object_type!r} of {decision.system}; one of {known}",
            )
        if decision.reason_code in QUARANTINE_NEXT_ACTIONS:
            yield (
                (*at, "reason_code"),
                (
                    f"reason code {decision.reason_code!r} marks a quarantined record (the sync could not store "
                    f"{'/'.join(decision.key[:3])}), which no decision resolves: correct the record at the vendor "
                    "(its raw content is in ops.quarantine) and its next sync stores it and resolves the item; "
                    "remove this decision"
                ),
            )
        elif decision.reason_code not in codes:
            yield (
                (*at, "reason_code"),
                (
                    f"unknown reason code {decision.reason_code!r} (it would match no review item); "
                    f"one of {', '.join(sorted(codes - QUARANTINE_NEXT_ACTIONS.keys()))}"
                ),
            )
        if decision.key in first:
            yield (
                at,
                (
                    f"a second decision for {'/'.join(decision.key)} (the first is decisions.{first[decision.key]}): "
                    "one decision per item"
                ),
            )
        else:
            first[decision.key] = index


@dataclass(frozen=True)
class ReviewSummary:
    opened: int
    still_open: int
    resolved: int
    ignored: int


def ensure_table(warehouse: Warehouse) -> None:
    warehouse.ensure_table(TABLE, COLUMNS, primary_key=list(KEY))


def sync_items(
    tx: Transaction,
    items: Iterable[ReviewItem],
    *,
    found_by: str,
    run_id: str,
    decisions: Decisions,
    within: set[tuple[str, str, str]] | None = None,
) -> ReviewSummary:
    """Makes the queue's items from `found_by` match what this run found, keeping their history.

    `within`: the records this run judged (system, object_type, id), when it judged only some; the items of
    the others stand as they are, seen again by this run."""
    now = datetime.now(UTC)
    found = {item.key: item for item in items}
    rows = tx.execute(f"SELECT * FROM {TABLE} WHERE found_by = ?", [found_by])
    existing = {tuple(row[:4]): dict(zip(tx.last_columns, row, strict=True)) for row in rows}
    if within is not None:  # the items of records this run did not judge stand as they are, seen again
        existing = {key: row for key, row in existing.items() if key[:3] in within}
        tx.execute(
            f"UPDATE {TABLE} SET last_seen = ?, occurrences = occurrences + 1, run_id = ? WHERE found_by = ? "
            f"AND status IN ('open', 'ignored') AND {REF_SQL} NOT IN (SELECT unnest(?))",
            [now, run_id, found_by, ref_texts(within)],
        )
    kept: list[dict[str, Any]] = []
    opened = still_open = resolved = ignored = 0
    for key, item in found.items():
        before = existing.get(key)
        decision = decisions.for_key(key)
        status = "ignored" if decision and decision.ignore else "open"  # only a standing decision ignores
        opened += before is None or before["status"] == "resolved"
        still_open += before is not None and before["status"] == "open"
        ignored += status == "ignored"
        kept.append(
            {
                **dict(zip(KEY, key, strict=True)),
                "detail": item.detail,
                "severity": item.severity,
                "next_action": item.next_action(),
                "status": status,
                "resolution": decision.note if decision and decision.ignore else None,
                "first_seen": before["first_seen"] if before else now,
                "last_seen": now,
                "occurrences": (before["occurrences"] if before else 0) + 1,
                "found_by": found_by,
                "run_id": run_id,
            }
        )
    for key, before in existing.items():
        if key in found:
            continue
        if before["status"] in ("open", "ignored"):
            resolved += 1
            decision = decisions.for_key(key)
            before = {
                **before,
                "status": "resolved",
                "resolution": f"decided: {decision.note or decision.model_dump(exclude_defaults=True)}"
                if decision
                else "the source record was fixed",
                "run_id": run_id,
            }
        kept.append(before)
    if within is None:
        tx.execute(f"DELETE FROM {TABLE} WHERE found_by = ?", [found_by])
    else:
        tx.execute(
            f"DELETE FROM {TABLE} WHERE found_by = ? AND {REF_SQL} IN (SELECT unnest(?))",
            [found_by, ref_texts(within)],
        )
    if kept:
        tx.append(TABLE, kept)
    return ReviewSummary(opened=opened, still_open=still_open, resolved=resolved, ignored=ignored)


def queue(warehouse: Warehouse, status: str | None = None) -> pd.DataFrame:
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    return warehouse.frame(f"SELECT * FROM {TABLE} {where} ORDER BY system, object_type, record_id", params)
