"""Raw records to canonical rows and review items, per entity: pure functions of the raw tables, the field
dictionary and people's decisions (no warehouse access here, so every rule is testable on plain dicts).

Per record: the vendor contract (`raw_contracts`), then every field by the dictionary (`validate.py`). Rows of
several systems (customers, contacts) are grouped by identity (`identity.py`) and merged field by field with
the dictionary's conflict rule; `review`/`default`/`allow` empty rules apply to the merged canonical value.

Nothing vanishes: every raw record ends up either accepted (in `accepted`, mapped to its canonical row) or in
review (an item), never both. Deleted/archived source records are accepted with `is_deleted = true` and never
raise review items: nobody can fix a record the vendor no longer shows; values of theirs that do not
normalize are left empty.
"""

from __future__ import annotations

from collections.abc import Callable

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build.contacts import build_contacts
from integration_assets.canonical.build.customers import PLANS, build_customers
from integration_assets.canonical.build.deals import build_deals
from integration_assets.canonical.build.invoices import build_invoices, build_payments
from integration_assets.canonical.build.records import (
    IDENTITY_ONLY_LOOKUPS,
    LOOKUPS,
    MARKS,
    OWN,
    PLACEMENT_REASONS,
    READ_AS,
    Built,
    Phase,
    Stream,
    _accept,
    _Reader,
    phases_of,
    streams_of,
    table_columns,
)
from integration_assets.canonical.build.tickets import build_tickets
from integration_assets.canonical.contracts import failing_rows
from integration_assets.canonical.review import Decisions
from integration_assets.mapping.schema import FieldDictionary

__all__ = [
    "IDENTITY_ONLY_LOOKUPS",
    "LOOKUPS",
    "MARKS",
    "OWN",
    "PLACEMENT_REASONS",
    "PLANS",
    "READ_AS",
    "Built",
    "Loader",
    "Phase",
    "Stream",
    "build_entity",
    "from_index",
    "phases_of",
    "streams_of",
    "table_columns",
]

# Each asset's build, phase by phase (`phases_of`); a later phase sees the identity matches of an earlier one.
_PHASES: dict[str, tuple[Callable[[_Reader, Built], None], ...]] = {
    "customers": (build_customers, build_contacts),
    "deals": (build_deals,),
    "invoices": (build_invoices,),
    "payments": (build_payments,),
    "tickets": (build_tickets,),
}

# The records of one phase: its streams read as records, its identity-only streams as a few paths each.
Loader = Callable[[Phase], ident.RawIndex]


def from_index(raw: ident.RawIndex) -> Loader:
    """A loader serving every phase from records already in memory (tests, small datasets)."""
    return lambda phase: {s: raw[s] for s in (*phase.streams, *phase.identity_only, *phase.marks) if s in raw}


def build_entity(
    entity: str,
    dictionary: FieldDictionary,
    raw: ident.RawIndex | Loader,
    decisions: Decisions,
    *,
    default_region: str | None = None,
    matches: dict[str, ident.Matches] | None = None,
    duplicates: dict[str, list[str]] | None = None,
) -> Built:
    """The canonical table(s) of one asset (`customers` also builds `contacts`). Each phase's records are
    loaded when it starts and let go when it ends, so a build holds about one phase's records at a time.

    `matches` (per identity) and `duplicates` (companies recorded twice), when given, were resolved over every
    record (`plan.py`): the loader may then hold only the records to build again, with their groups."""
    load = raw if callable(raw) else from_index(raw)
    reader = _Reader(dictionary, {}, decisions, OWN[entity], default_region)
    reader.matched.update(matches or {})
    reader.duplicates = duplicates
    built = Built()
    for phase, build in zip(phases_of(entity), _PHASES[entity], strict=True):
        reader.raw = load(phase)
        before = set(built.tables)
        build(reader, built)
        for table in [t for t in built.tables if t not in before]:
            _enforce(reader, built, table)
        for stream in phase.streams:
            if stream in OWN[entity]:
                built.records_in[stream] = len(reader.raw.get(stream, {}))
        reader.raw = {}
    built.items = sorted(reader.items.values(), key=lambda i: i.key)
    built.contracts = {s: r for s, r in reader.contracts.items() if s in reader.own}
    for stream in OWN[entity]:
        review = built.review_ids(stream)
        built.accepted[stream] = {k: v for k, v in built.accepted.get(stream, {}).items() if k not in review}
    return built


def _enforce(reader: _Reader, built: Built, table: str) -> None:
    """Live rows breaking the canonical contract go to review instead of into the table.

    Rows of records deleted at the source are kept for history as they are: nobody can fix them at the
    source, and leaving them out would lose them (a deleted record is never sent to review). For the same
    reason, a deleted record merged into a live row that goes to review stays accepted, as deleted and placed
    in no row, rather than falling out of the accounting.
    """
    frame = built.tables[table]
    live = [position for position, gone in enumerate(frame["is_deleted"].fillna(False).astype(bool)) if not gone]
    failed_live, _ = failing_rows(table, frame.iloc[live].reset_index(drop=True))
    failed = {live[position]: broken for position, broken in failed_live.items()}
    if not failed:
        return
    for position, broken in failed.items():
        for ref in str(frame.iloc[position]["source_records"]).split(", "):
            system, object_type, rid = ref.split("/", 2)
            stream = (system, object_type)
            if reader.raw[stream][rid]["is_deleted"]:
                if rid in built.accepted.get(stream, {}):
                    _accept(built, stream, rid, f"canonical.{table}", None, "deleted")
                continue
            reader.own.add(stream)
            reader.flag(
                stream, rid, "contract_violation", "Breaks the canonical contract: " + "; ".join(sorted(set(broken)))
            )
            built.accepted.get(stream, {}).pop(rid, None)
    built.tables[table] = frame.drop(index=frame.index[list(failed)]).reset_index(drop=True)
