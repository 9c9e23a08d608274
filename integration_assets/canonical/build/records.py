"""What every entity's build shares: the raw streams it reads, its output (`Built`), the canonical table's
columns, and the `_Reader` that checks each record once and turns what fails into review items, so a record
is either accepted or in review, never both."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build.links import direct_links, unlinked
from integration_assets.canonical.raw_contracts import ContractResult, check_stream
from integration_assets.canonical.review import PLACEMENT_REASONS, Decision, Decisions, ReviewItem
from integration_assets.canonical.staged import decode_read
from integration_assets.canonical.validate import EMPTY, RecordRead, is_empty, read_record, remembered
from integration_assets.mapping.normalize import Money
from integration_assets.mapping.schema import FieldDictionary, FieldSpec
from integration_assets.systems import CATALOG

Stream = tuple[str, str]
# raw streams each build reads: its own (accounted for) first, then the ones it only looks things up in
OWN: dict[str, list[Stream]] = {
    "customers": [
        ("crm", "companies"),
        ("billing", "customers"),
        ("support", "organizations"),
        ("crm", "contacts"),
        ("support", "users"),
    ],
    "deals": [("crm", "deals")],
    "invoices": [("billing", "invoices")],
    "payments": [("billing", "charges")],
    "tickets": [("support", "tickets")],
}
LOOKUPS: dict[str, list[Stream]] = {
    "customers": [("crm", "deals")],
    "deals": [("billing", "invoices")],
    "invoices": [("crm", "companies"), ("crm", "contacts"), ("billing", "customers")],
    "payments": [("crm", "companies"), ("crm", "contacts"), ("billing", "customers")],
    "tickets": [("crm", "companies"), ("crm", "contacts"), ("support", "organizations"), ("support", "users")],
}


# streams whose deletion marks a build reads: the records its entity's direct links name (`links.py`), so a live
# deal never links to a company or contact archived at the source
MARKS: dict[str, list[Stream]] = {"deals": [("crm", "companies"), ("crm", "contacts")]}


# Entities whose lookups serve identity resolution only (their builds never read a lookup record's fields).
IDENTITY_ONLY_LOOKUPS = frozenset({"invoices", "payments", "tickets"})


@dataclass(frozen=True)
class Phase:
    """The part of a build that holds its records in memory at once: the streams it reads as records, and those
    it reads only for identity resolution (a few paths of each record)."""

    streams: tuple[Stream, ...]
    identity_only: tuple[Stream, ...] = ()
    marks: tuple[Stream, ...] = ()  # read for their records deleted at the source only (`MARKS`)


def phases_of(entity: str) -> tuple[Phase, ...]:
    """`customers` builds its clients, then its people, each phase with its own records (about half each at a
    million records); every other entity is one phase."""
    if entity == "customers":
        clients, people = OWN["customers"][:3], OWN["customers"][3:]
        return (Phase((*clients, *LOOKUPS["customers"]), identity_only=people[:1]), Phase(people))
    if entity in IDENTITY_ONLY_LOOKUPS:
        return (Phase(tuple(OWN[entity]), identity_only=tuple(LOOKUPS[entity])),)
    return (Phase((*OWN[entity], *LOOKUPS[entity]), marks=tuple(MARKS.get(entity, ()))),)


# the entity each stream's records are read as (a lookup is read as its own entity: deals read invoices as invoices)
READ_AS: dict[Stream, str] = {
    ("crm", "companies"): "customers",
    ("billing", "customers"): "customers",
    ("support", "organizations"): "customers",
    ("crm", "contacts"): "contacts",
    ("support", "users"): "contacts",
    ("crm", "deals"): "deals",
    ("billing", "invoices"): "invoices",
    ("billing", "charges"): "payments",
    ("support", "tickets"): "tickets",
}


def streams_of(entity: str) -> Iterable[Stream]:
    """Every raw stream the entity's build reads: its own, then its lookups, then those it reads deletion marks of."""
    return [*OWN[entity], *LOOKUPS[entity], *MARKS.get(entity, ())]


_SQL_TYPES = {
    "instant": "TIMESTAMPTZ",
    "money": "BIGINT",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
}


@dataclass
class Built:
    """One build's output: canonical frames, review items and where every own raw record went."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    items: list[ReviewItem] = field(default_factory=list)
    accepted: dict[Stream, dict[str, tuple[str, str | None, str]]] = field(default_factory=dict)
    records_in: dict[Stream, int] = field(default_factory=dict)
    contracts: dict[Stream, ContractResult] = field(default_factory=dict)

    def review_ids(self, stream: Stream) -> set[str]:
        return {i.record_id for i in self.items if (i.system, i.object_type) == stream}


# ----------------------------------------------------------------------------------------------- tables


def _column_type(spec: FieldSpec) -> str:
    if spec.many:
        return "JSON"
    return _SQL_TYPES.get(spec.type, "TEXT")


def table_columns(dictionary: FieldDictionary, entity: str) -> dict[str, str]:
    """The canonical table's columns from the dictionary's destinations, plus bookkeeping columns."""
    return dict(remembered(_TABLE_COLUMNS, dictionary, (entity,), lambda: _table_columns(dictionary, entity)))


_TABLE_COLUMNS: dict[tuple, tuple[Any, Any]] = {}


def _table_columns(dictionary: FieldDictionary, entity: str) -> dict[str, str]:
    columns: dict[str, str] = {}
    if entity == "contacts":
        columns["person_id"] = "TEXT NOT NULL"
    for spec in dictionary.entity(entity).fields.values():
        column = next(d for d in spec.destinations if d.startswith(f"canonical.{entity}.")).rsplit(".", 1)[1]
        columns[column] = _column_type(spec)
        if spec.type == "money" and not any(
            f.type == "currency" and f.sources.keys() & spec.sources.keys()
            for f in dictionary.entity(entity).fields.values()
        ):
            columns[f"{column}_currency"] = "TEXT"
    columns["is_deleted"] = "BOOLEAN NOT NULL"
    columns["source_records"] = "TEXT"
    return columns


def _column(spec: FieldSpec, entity: str) -> str:
    """The field's column in `canonical.<entity>` (remembered per field: every row of every build asks)."""
    return remembered(
        _COLUMNS,
        spec,
        (entity,),
        lambda: next(d for d in spec.destinations if d.startswith(f"canonical.{entity}.")).rsplit(".", 1)[1],
    )


_COLUMNS: dict[tuple, tuple[Any, Any]] = {}


def _cell(value: Any) -> Any:
    if value is EMPTY:
        return None
    if isinstance(value, Money):
        return value.minor
    return value


# ----------------------------------------------------------------------------------------------- records


class _Reader:
    """Contracts and field reads of every record of the streams one build uses (own streams with items)."""

    def __init__(
        self,
        dictionary: FieldDictionary,
        raw: ident.RawIndex,
        decisions: Decisions,
        own: list[Stream],
        default_region: str | None,
    ) -> None:
        self.d, self.raw, self.decisions, self.region = dictionary, raw, decisions, default_region
        self.own = set(own)
        self.items: dict[tuple[str, str, str, str], ReviewItem] = {}
        self._in_review: set[tuple[str, str, str]] = set()  # (system, object_type, id) of every item
        self.ignored: dict[tuple[str, str, str], Decision] = {}  # the first ignore decision of each record
        for decision in decisions.decisions:
            if decision.ignore:
                self.ignored.setdefault(decision.key[:3], decision)
        self.contracts: dict[Stream, ContractResult] = {}
        self._failed: dict[Stream, dict[str, list[str]]] = {}
        # identity matches per identity name, and the companies recorded twice: resolved from this build's own
        # records unless given (a build of some records only is given them, resolved over every record)
        self.matched: dict[str, ident.Matches] = {}
        self.duplicates: dict[str, list[str]] | None = None
        self._deleted: dict[Stream, frozenset[str]] = {}

    def matches(self, name: str) -> ident.Matches:
        """Identity `name`'s match of each record it reads (every phase after the first sees the same)."""
        if name not in self.matched:
            self.matched[name] = ident.resolve(self.d, name, self.raw, self.decisions)
        return self.matched[name]

    def contract(self, stream: Stream) -> dict[str, list[str]]:
        """Which live records broke the vendor contract: staged with their reads, else checked here."""
        if stream not in self._failed:
            rows = self.raw.get(stream, {})
            live = {rid: r for rid, r in rows.items() if not r["is_deleted"]}
            if all("read" in r for r in rows.values()):
                failed = {rid: r["contract"] for rid, r in live.items() if r["contract"]}
                result = ContractResult(*stream, len(live), pd.DataFrame(), failed)
            else:
                result = check_stream(CATALOG.stream_of(*stream), {rid: r["payload"] for rid, r in live.items()})
            self.contracts[stream] = result
            self._failed[stream] = result.failed
        return self._failed[stream]

    def read(self, entity: str, stream: Stream, rid: str) -> RecordRead:
        row = self.raw[stream][rid]
        if "read" in row:  # staged (`staged.py`): read when the row was loaded, as the entity READ_AS says
            if READ_AS[stream] != entity:
                raise ValueError(f"{stream} is staged as {READ_AS[stream]}, not read as {entity}")
            return decode_read(row["read"])
        return read_record(self.d, entity, *stream, row["payload"], default_region=self.region)

    def ok(self, entity: str, stream: Stream, rid: str) -> RecordRead | None:
        """The record's read when it passes its contract and every field rule (lookups use this too)."""
        if rid in self.contract(stream):
            return None
        found = self.read(entity, stream, rid)
        return None if found.problems and not self.raw[stream][rid]["is_deleted"] else found

    def deleted(self, stream: Stream) -> frozenset[str]:
        """The ids of the stream's records deleted at the source, among those this build holds (a stream read
        for its marks only holds those: `Phase.marks`)."""
        if stream not in self._deleted:
            self._deleted[stream] = frozenset(rid for rid, r in self.raw.get(stream, {}).items() if r["is_deleted"])
        return self._deleted[stream]

    def linked(self, entity: str, stream: Stream, rid: str, found: RecordRead) -> RecordRead:
        """An own live record's read without its links to records deleted at the source (`links.py`), for the
        entities whose builds read the marks of what they link to (`MARKS`): their plans build a record again
        when a record it names is deleted or restored."""
        record = self.raw[stream][rid]
        if record["is_deleted"] or entity not in MARKS or not direct_links(self.d, entity, stream):
            return found
        marked = MARKS[entity]
        return unlinked(
            self.d, entity, stream, record["payload"], found, lambda s: self.deleted(s) if s in marked else frozenset()
        )

    def flag(self, stream: Stream, rid: str, reason: str, detail: str, field_name: str = "") -> None:
        if stream not in self.own or self.raw[stream][rid]["is_deleted"]:
            return
        item = ReviewItem(stream[0], stream[1], rid, reason, detail, field=field_name)
        decision = self.decisions.for_key(item.key)
        if decision is not None and decision.keep and not decision.ignore:
            if reason not in PLACEMENT_REASONS:
                return  # a person accepted the record as it is
            # "keep" cannot say whose record this is: only an owner decision places it.
            item = replace(item, detail=f"{detail} A keep decision cannot place it: decide its owner instead.")
        self.add(item)

    def add(self, item: ReviewItem) -> None:
        """The record's item, unless one with its key is already in (the first reason found stays)."""
        if item.key not in self.items:
            self.items[item.key] = item
            self._in_review.add(item.key[:3])

    def check(self, entity: str, stream: Stream, rid: str) -> RecordRead:
        """Contract + field rules for an own record; problems become items. Returns the read (EMPTY on failures)."""
        broken = self.contract(stream).get(rid)
        if broken:
            self.flag(
                stream, rid, "contract_violation", "Breaks the vendor contract: " + "; ".join(sorted(set(broken)))
            )
        found = self.linked(entity, stream, rid, self.read(entity, stream, rid))
        for problem in found.problems:
            self.flag(stream, rid, problem.reason_code, problem.detail, problem.field)
        return found

    def in_review(self, stream: Stream, rid: str) -> bool:
        return (*stream, rid) in self._in_review


def _flag_ignored(reader: _Reader, stream: Stream, rid: str) -> bool:
    """A record a person chose to leave out stays in the queue (status ignored), with its decision's reason."""
    decision = reader.ignored.get((*stream, rid))
    if decision is None:
        return False
    reader.add(ReviewItem(*stream, rid, decision.reason_code, f"Left out by decision: {decision.note}".strip()))
    return True


def _accept(built: Built, stream: Stream, rid: str, table: str, key: str | None, how: str) -> None:
    built.accepted.setdefault(stream, {})[rid] = (table, key, how)


def match_key(system: str, object_type: str, raw_id: Any) -> tuple[str, str, str] | None:
    """The record a reference names, as identity matches are keyed (None when it names none): a reference
    resolves through that record's match, so a change of the match reaches the referring record."""
    return None if is_empty(raw_id) else (system, object_type, str(raw_id).strip())


def _customer_ref(matches: ident.Matches, system: str, object_type: str, raw_id: Any) -> Any:
    key = match_key(system, object_type, raw_id)
    if key is None:
        return EMPTY
    found = matches.get(key)
    return found.target if found is not None and found.target else None
