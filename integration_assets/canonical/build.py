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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd

from integration_assets.canonical import identity as ident
from integration_assets.canonical.contracts import failing_rows
from integration_assets.canonical.raw_contracts import ContractResult, check_stream
from integration_assets.canonical.review import Decisions, ReviewItem
from integration_assets.canonical.validate import EMPTY, RecordRead, is_empty, read_record
from integration_assets.mapping.dictionary import FieldDictionary, FieldSpec
from integration_assets.mapping.normalize import Money, namespaced_id

__all__ = ["RAW_TABLES", "Built", "build_entity", "table_columns"]

Stream = tuple[str, str]
RAW_TABLES: dict[Stream, str] = {
    ("crm", "companies"): "raw.crm_companies",
    ("crm", "contacts"): "raw.crm_contacts",
    ("crm", "deals"): "raw.crm_deals",
    ("billing", "customers"): "raw.billing_customers",
    ("billing", "invoices"): "raw.billing_invoices",
    ("billing", "charges"): "raw.billing_payments",
    ("support", "organizations"): "raw.support_organizations",
    ("support", "users"): "raw.support_users",
    ("support", "tickets"): "raw.support_tickets",
}
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
PLANS = ("starter", "professional", "enterprise")  # by won deals: 0, 1, 2 or more (customers.plan's rule)
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
    return next(d for d in spec.destinations if d.startswith(f"canonical.{entity}.")).rsplit(".", 1)[1]


def _cell(value: Any) -> Any:
    if value is EMPTY:
        return None
    if isinstance(value, Money):
        return value.minor
    return value


# ----------------------------------------------------------------------------------------------- records


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
        self.contracts: dict[Stream, ContractResult] = {}
        self._failed: dict[Stream, dict[str, list[str]]] = {}

    def contract(self, stream: Stream) -> dict[str, list[str]]:
        if stream not in self._failed:
            live = {rid: r["payload"] for rid, r in self.raw.get(stream, {}).items() if not r["is_deleted"]}
            result = check_stream(*stream, live)
            self.contracts[stream] = result
            self._failed[stream] = result.failed
        return self._failed[stream]

    def read(self, entity: str, stream: Stream, rid: str) -> RecordRead:
        row = self.raw[stream][rid]
        return read_record(self.d, entity, *stream, row["payload"], default_region=self.region)

    def ok(self, entity: str, stream: Stream, rid: str) -> RecordRead | None:
        """The record's read when it passes its contract and every field rule (lookups use this too)."""
        if rid in self.contract(stream):
            return None
        found = self.read(entity, stream, rid)
        return None if found.problems and not self.raw[stream][rid]["is_deleted"] else found

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
        self.items.setdefault(item.key, item)

    def check(self, entity: str, stream: Stream, rid: str) -> RecordRead:
        """Contract + field rules for an own record; problems become items. Returns the read (EMPTY on failures)."""
        broken = self.contract(stream).get(rid)
        if broken:
            self.flag(
                stream, rid, "contract_violation", "Breaks the vendor contract: " + "; ".join(sorted(set(broken)))
            )
        found = self.read(entity, stream, rid)
        for problem in found.problems:
            self.flag(stream, rid, problem.reason_code, problem.detail, problem.field)
        return found

    def in_review(self, stream: Stream, rid: str) -> bool:
        return any(k[:3] == (*stream, rid) for k in self.items)


def _flag_ignored(reader: _Reader, stream: Stream, rid: str) -> bool:
    """A record a person chose to leave out stays in the queue (status ignored), with its decision's reason."""
    for decision in reader.decisions.decisions:
        if decision.ignore and (decision.system, decision.object_type, decision.record_id) == (*stream, rid):
            reader.items.setdefault(
                decision.key,
                ReviewItem(*stream, rid, decision.reason_code, f"Left out by decision: {decision.note}".strip()),
            )
            return True
    return False


# ------------------------------------------------------------------------------------------------ merge


def _updated(dictionary: FieldDictionary, entity: str, system: str, values: RecordRead) -> datetime | None:
    for name, spec in dictionary.entity(entity).fields.items():
        if spec.type == "instant" and name.endswith("updated_at") and system in spec.sources:
            value = values.get(name)
            return value if isinstance(value, datetime) else None
    return None


def _merge(
    reader: _Reader,
    entity: str,
    members: list[tuple[Stream, str, RecordRead]],
    derived: dict[str, Any],
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """One canonical row from the accepted records of one group; returns (row, review problems)."""
    d = reader.d
    spec_entity = d.entity(entity)
    row: dict[str, Any] = {}
    problems: list[tuple[str, str, str]] = []  # (field, reason, detail)
    by_system: dict[str, list[RecordRead]] = defaultdict(list)
    for stream, _, values in members:
        by_system[stream[0]].append(values)
    for name, spec in spec_entity.fields.items():
        column = _column(spec, entity)
        if name in derived:
            value = derived[name]
        else:
            found = [
                (system, values)
                for system in spec.sources
                for values in by_system.get(system, [])
                if not is_empty(values.get(name))
            ]
            value = EMPTY
            if found:
                if spec.conflict == "review" and len({str(v.get(name)) for _, v in found}) > 1:
                    problems.append((name, "conflicting_values", f"{name}: the sources disagree."))
                elif spec.conflict == "newest_wins":
                    stamped = [(_updated(d, entity, s, v), s == spec.owner, v.get(name)) for s, v in found]
                    stamped.sort(key=lambda t: (t[0] is not None, t[0] or datetime.min, t[1]), reverse=True)
                    value = stamped[0][2]
                else:
                    owners = [v.get(name) for s, v in found if s == spec.owner]
                    value = owners[0] if owners else found[0][1].get(name)
        if is_empty(value):
            if spec.empty == "default":
                value = spec.default
            elif (
                spec.empty == "review"
                and name not in spec_entity.key
                and name not in derived
                and not any(p.field == name for _, _, values in members for p in values.problems)
            ):  # a value that failed its own rule is already in review for that reason
                problems.append((name, "missing_required_field", f"{name} is empty in every source."))
        if isinstance(value, Money):
            row[column] = value.minor
            currency_column = f"{column}_currency"
            if currency_column in table_columns(d, entity):
                row[currency_column] = value.currency
        else:
            row[column] = _cell(value)
    return row, problems


# ----------------------------------------------------------------------------------------------- builds


def build_entity(
    entity: str,
    dictionary: FieldDictionary,
    raw: ident.RawIndex,
    decisions: Decisions,
    *,
    default_region: str | None = None,
) -> Built:
    """The canonical table(s) of one asset (`customers` also builds `contacts`)."""
    reader = _Reader(dictionary, raw, decisions, OWN[entity], default_region)
    built = Built()
    if entity == "customers":
        _customers(reader, built)
    else:
        _single(reader, built, entity)
    for table in list(built.tables):
        _enforce(reader, built, table)
    built.items = sorted(reader.items.values(), key=lambda i: i.key)
    built.contracts = {s: r for s, r in reader.contracts.items() if s in reader.own}
    for stream in OWN[entity]:
        built.records_in[stream] = len(raw.get(stream, {}))
        review = built.review_ids(stream)
        built.accepted[stream] = {k: v for k, v in built.accepted.get(stream, {}).items() if k not in review}
    return built


def _enforce(reader: _Reader, built: Built, table: str) -> None:
    """Live rows breaking the canonical contract go to review instead of into the table.

    Rows of records deleted at the source are kept for history as they are: nobody can fix them at the
    source, and leaving them out would lose them (a deleted record is never sent to review).
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
            reader.own.add((system, object_type))
            reader.flag(
                (system, object_type),
                rid,
                "contract_violation",
                "Breaks the canonical contract: " + "; ".join(sorted(set(broken))),
            )
            built.accepted.get((system, object_type), {}).pop(rid, None)
    built.tables[table] = frame.drop(index=frame.index[list(failed)]).reset_index(drop=True)


def _accept(built: Built, stream: Stream, rid: str, table: str, key: str | None, how: str) -> None:
    built.accepted.setdefault(stream, {})[rid] = (table, key, how)


def _customer_ref(matches: dict[tuple[str, str, str], ident.Match], system: str, object_type: str, raw_id: Any) -> Any:
    if is_empty(raw_id):
        return EMPTY
    found = matches.get((system, object_type, str(raw_id).strip()))
    return found.target if found is not None and found.target else None


def _person_ref(matches: dict[tuple[str, str, str], ident.Match], raw: ident.RawIndex, raw_id: Any) -> Any:
    """A Zendesk user id as the canonical person key: its CRM contact when linked, else support:<id>."""
    if is_empty(raw_id):
        return EMPTY
    rid = str(raw_id).strip()
    found = matches.get(("support", "users", rid))
    if found is not None and found.target:
        return found.target
    return namespaced_id("support", raw_id if isinstance(raw_id, int) else rid)


def _single(reader: _Reader, built: Built, entity: str) -> None:
    d, raw = reader.d, reader.raw
    stream = OWN[entity][0]
    matches: dict[tuple[str, str, str], ident.Match] = {}
    if entity in ("invoices", "payments"):
        matches = ident.resolve(d, "customers", raw, reader.decisions)
    elif entity == "tickets":
        matches = {
            **ident.resolve(d, "customers", raw, reader.decisions),
            **ident.resolve(d, "contacts", raw, reader.decisions),
        }
    invoice_status: dict[str, set[tuple[str, str]]] = defaultdict(set)
    if entity == "deals":
        for rid in raw.get(("billing", "invoices"), {}):
            values = reader.ok("invoices", ("billing", "invoices"), rid)
            if values is not None and not raw[("billing", "invoices")][rid]["is_deleted"]:
                deal, status = values.get("deal_id"), values.get("status")
                if not is_empty(deal) and not is_empty(status):
                    invoice_status[deal].add((rid, status))
    fields = d.entity(entity).fields
    key_field = d.entity(entity).key[0]
    rows = []
    for rid, record in raw.get(stream, {}).items():
        if _flag_ignored(reader, stream, rid):
            continue
        values = reader.check(entity, stream, rid)
        payload = record["payload"]
        derived: dict[str, Any] = {}
        for name, spec in fields.items():
            source = spec.sources.get(stream[0])
            if (
                spec.references == "customers"
                and source is not None
                and source.id_system is None
                and stream[0] != "crm"
            ):
                raw_id = ident.resolve_path(payload, source.path or "")
                ref = _customer_ref(matches, stream[0], _ref_object(stream[0]), raw_id)
                if ref is None:
                    reader.flag(
                        stream,
                        rid,
                        "unresolved_reference",
                        f"{name}: {raw_id} has no resolved client (its record is in review or unknown).",
                        name,
                    )
                derived[name] = EMPTY if ref is None else ref
            elif spec.references == "contacts" and source is not None and stream[0] == "support":
                derived[name] = _person_ref(matches, raw, ident.resolve_path(payload, source.path or ""))
        if entity == "deals":
            found = invoice_status.get(values.get("deal_id"), set())
            if len({s for _, s in found}) > 1 or len(found) > 1:
                reader.flag(stream, rid, "conflicting_values", f"invoice_status: {len(found)} invoices bill this deal.")
            derived["invoice_status"] = next(iter(found))[1] if len(found) == 1 else EMPTY
        row, problems = _merge(reader, entity, [(stream, rid, values)], derived)
        for name, reason, detail in problems:
            reader.flag(stream, rid, reason, detail, name)
        if reader.in_review(stream, rid):
            continue
        row["is_deleted"] = bool(record["is_deleted"])
        row["source_records"] = f"{stream[0]}/{stream[1]}/{rid}"
        rows.append(row)
        _accept(built, stream, rid, f"canonical.{entity}", row[_column(fields[key_field], entity)], "own")
    built.tables[entity] = pd.DataFrame(rows, columns=list(table_columns(d, entity)))


def _ref_object(system: str) -> str:
    return {"billing": "customers", "support": "organizations"}[system]


def _customers(reader: _Reader, built: Built) -> None:
    d, raw = reader.d, reader.raw
    companies = ("crm", "companies")
    customers_ = {"billing": ("billing", "customers"), "support": ("support", "organizations")}
    # --- companies: own rules, then duplicates among live ones
    reads: dict[Stream, dict[str, RecordRead]] = defaultdict(dict)
    for rid in raw.get(companies, {}):
        if not _flag_ignored(reader, companies, rid):
            reads[companies][rid] = reader.check("customers", companies, rid)
    live_values = {
        rid: {
            f: v.get(f) if not is_empty(v.get(f)) else _raw_text(raw[companies][rid]["payload"], d, f) for f in v.values
        }
        for rid, v in reads[companies].items()
        if not raw[companies][rid]["is_deleted"]
    }
    for rid, others in ident.duplicates(d, "customers", live_values).items():
        reader.flag(
            companies,
            rid,
            d.identity["customers"].duplicates.on_match,  # type: ignore[union-attr]
            f"Same name and domain as companies {', '.join(others)}: the same client recorded twice?",
        )
    # --- billing customers and support organizations: identity
    matches = ident.resolve(d, "customers", raw, reader.decisions)
    groups: dict[str, list[tuple[Stream, str, RecordRead]]] = defaultdict(list)
    for rid, values in reads[companies].items():
        if not reader.in_review(companies, rid):
            groups[namespaced_id("crm", rid)].append((companies, rid, values))
    how: dict[tuple[Stream, str], str] = {}
    for system, stream in customers_.items():
        per_target: dict[str, list[str]] = defaultdict(list)
        for rid, record in raw.get(stream, {}).items():
            if _flag_ignored(reader, stream, rid):
                continue
            values = reader.check("customers", stream, rid)
            match = matches[(*stream, rid)]
            if match.reason_code and not record["is_deleted"]:
                reader.flag(stream, rid, match.reason_code, match.detail, "customer_id")
                continue
            if reader.in_review(stream, rid):
                continue
            if match.target is None:  # a deleted record nobody can place
                _accept(built, stream, rid, "canonical.customers", None, "deleted")
                continue
            reads[stream][rid] = values
            how[(stream, rid)] = match.matched_by
            if not record["is_deleted"]:
                per_target[match.target].append(rid)
        for target, rids in per_target.items():
            undecided = [r for r in rids if how[(stream, r)] != "decision"]
            if len(undecided) > 1:
                for r in undecided:
                    reader.flag(
                        stream,
                        r,
                        "duplicate_record",
                        f"{len(undecided)} {system} records resolve to client {target}: "
                        + ", ".join(sorted(undecided)),
                        f"{system}_id",
                    )
        for rid, values in reads[stream].items():
            if not reader.in_review(stream, rid):
                groups[matches[(*stream, rid)].target].append((stream, rid, values))  # type: ignore[index]
    # --- derived from the client's accepted deals
    won: dict[str, list[Money]] = defaultdict(list)
    for rid, record in raw.get(("crm", "deals"), {}).items():
        deal = reader.ok("deals", ("crm", "deals"), rid)
        if deal is None or record["is_deleted"] or deal.get("stage") != "won" or is_empty(deal.get("customer_id")):
            continue
        if isinstance(deal.get("amount"), Money):
            won[deal.get("customer_id")].append(deal.get("amount"))
    rows = []
    for key, members in groups.items():
        amounts = won.get(key, [])
        currencies = {m.currency for m in amounts}
        derived: dict[str, Any] = {"plan": PLANS[min(len(amounts), len(PLANS) - 1)]}
        if len(currencies) > 1:
            for stream, rid, _ in members:
                if stream == companies:
                    reader.flag(stream, rid, "mixed_currencies", f"Won deals in {sorted(currencies)}: not added up.")
            derived["lifetime_value"] = EMPTY
        elif amounts:
            derived["lifetime_value"] = Money(sum(m.minor for m in amounts), next(iter(currencies)))
        else:
            derived["lifetime_value"] = EMPTY
        derived["customer_id"] = key
        for system, stream in customers_.items():
            ids = [r for s, r, _ in members if s == stream and not raw[stream][r]["is_deleted"]]
            ids.sort(key=lambda r: how.get((stream, r)) == "decision")
            field_name = "billing_customer_id" if system == "billing" else "support_organization_id"
            derived[field_name] = namespaced_id(system, ids[0]) if ids else EMPTY
        row, kept = _merge_group(d, reader, raw, "customers", members, derived)
        if not kept:
            continue
        if isinstance(derived["lifetime_value"], Money):
            row["lifetime_value_currency"] = derived["lifetime_value"].currency
        rows.append(row)
        for s, r in kept:
            _accept(built, s, r, "canonical.customers", key, how.get((s, r), "own"))
    built.tables["customers"] = pd.DataFrame(rows, columns=list(table_columns(d, "customers")))
    _contacts(reader, built, matches)


def _raw_text(payload: dict, d: FieldDictionary, name: str) -> Any:
    source = d.entity("customers").field(name).sources.get("crm")
    return ident.resolve_path(payload, source.path) if source is not None and source.path else EMPTY


def _contacts(reader: _Reader, built: Built, customer_matches: dict[tuple[str, str, str], ident.Match]) -> None:
    d, raw = reader.d, reader.raw
    contacts, users = ("crm", "contacts"), ("support", "users")
    matches = ident.resolve(d, "contacts", raw, reader.decisions)
    groups: dict[str, list[tuple[Stream, str, RecordRead]]] = defaultdict(list)
    for rid in raw.get(contacts, {}):
        if _flag_ignored(reader, contacts, rid):
            continue
        values = reader.check("contacts", contacts, rid)
        if not reader.in_review(contacts, rid):
            groups[namespaced_id("crm", rid)].append((contacts, rid, values))
    per_target: dict[str, list[str]] = defaultdict(list)
    how: dict[str, str] = {}
    user_reads: dict[str, RecordRead] = {}
    for rid, record in raw.get(users, {}).items():
        if _flag_ignored(reader, users, rid):
            continue
        values = reader.check("contacts", users, rid)
        match = matches.get((*users, rid), ident.Match(None, "unmatched"))
        if match.reason_code and not record["is_deleted"]:
            reader.flag(users, rid, match.reason_code, match.detail, "contact_id")
            continue
        if reader.in_review(users, rid):
            continue
        org = ident.resolve_path(record["payload"], "organization_id")
        ref = _customer_ref(customer_matches, "support", "organizations", org)
        values.values["customer_id"].value = EMPTY if ref is None else ref
        user_reads[rid] = values
        how[rid] = match.matched_by
        key = match.target or namespaced_id("support", record["payload"].get("id", rid))
        if match.target and not record["is_deleted"]:
            per_target[match.target].append(rid)
        groups[key].append((users, rid, values))
    for target, rids in per_target.items():
        undecided = [r for r in rids if how[r] != "decision"]
        if len(undecided) > 1:
            for r in undecided:
                reader.flag(users, r, "duplicate_record", f"{len(undecided)} Zendesk users are contact {target}.")
    rows = []
    for key, members in groups.items():
        members = [m for m in members if not reader.in_review(m[0], m[1])]
        if not members:
            continue
        derived: dict[str, Any] = {
            "contact_id": key if key.startswith("crm:") else EMPTY,
            "support_user_id": next(
                (namespaced_id("support", raw[users][r]["payload"].get("id", r)) for s, r, _ in members if s == users),
                EMPTY,
            ),
        }
        row, kept = _merge_group(d, reader, raw, "contacts", members, derived)
        if not kept:
            continue
        row["person_id"] = key
        rows.append(row)
        for s, r in kept:
            _accept(built, s, r, "canonical.contacts", key, how.get(r, "own") if s == users else "own")
    built.tables["contacts"] = pd.DataFrame(rows, columns=list(table_columns(d, "contacts")))


def _merge_group(d, reader, raw, entity: str, members, derived: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """One canonical row from the records resolved to it; a conflict flags the owner's records for review.

    Returns the row and the records it keeps (none: every record of the group is in review)."""
    row, problems = _merge(reader, entity, members, derived)
    for name, reason, detail in problems:
        owner = d.entity(entity).field(name).owner
        targets = [(s, r) for s, r, _ in members if s[0] == owner] or [(s, r) for s, r, _ in members]
        for s, r in targets:
            reader.flag(s, r, reason, detail, name)
    kept = [(s, r) for s, r, _ in members if not reader.in_review(s, r)]
    if kept:
        row["is_deleted"] = all(raw[s][r]["is_deleted"] for s, r in kept)
        row["source_records"] = ", ".join(f"{s[0]}/{s[1]}/{r}" for s, r in kept)
    return row, kept


def streams_of(entity: str) -> Iterable[Stream]:
    return [*OWN[entity], *LOOKUPS[entity]]
