"""What a canonical build must redo: the records whose outputs can differ from the last build's.

A build's outputs for a record (its canonical row, its line in the record map, its review items) depend on
the record and on the others it is built with: the members of its group (a client's company, payer and
organization; a person's contact and user), the records its references resolve through (a payment's payer),
the lookups that derive a value (a client's won deals, a deal's invoices), and the records that decide its
identity (a domain shared by two companies). Each of those is cheap to know without reading a record's fields:
identity is resolved over the few payload paths it follows, and a lookup's link is one value of its staged
read. So every build first works out, for each record it owns, its group and a signature of everything its
group's outputs depend on; a group whose signature is the last build's is left as it is, every other one is
built again from its records alone, given the identity matches resolved over every record.

What the signature does not hold (the field dictionary, the review decisions, the default region, the code
that builds) is the build's basis: when it differs from the last build's, everything is built again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build import LOOKUPS, OWN, Stream
from integration_assets.canonical.build.contacts import user_client
from integration_assets.canonical.build.customers import compared_values
from integration_assets.canonical.build.single import references
from integration_assets.canonical.load import PhaseLoader, build_paths, lean_records, read_values
from integration_assets.canonical.review import REF_SQL, Decisions, ref_texts
from integration_assets.canonical.staged import reads_basis
from integration_assets.canonical.validate import EMPTY
from integration_assets.core.warehouse import Transaction, Warehouse
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.systems import CATALOG

__all__ = ["STATE", "Plan", "Ref", "build_basis", "ensure_state", "last_state", "plan_build", "save_state"]

Ref = tuple[str, str, str]  # system, object_type, record id
STATE = "canonical.build_state"  # per asset and own record: its group and the group's signature at the last build
STATE_COLUMNS = {
    "asset": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "group_key": "TEXT NOT NULL",
    "signature": "TEXT NOT NULL",
}
BASES = "canonical.build_bases"  # per asset: the basis its state was built under; per identity: its version
BASES_COLUMNS = {"asset": "TEXT NOT NULL", "basis": "TEXT NOT NULL"}
MATCHES = "canonical.identity_matches"  # per identity and record it resolves: its match, at the version in BASES
MATCHES_COLUMNS = {
    "identity": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "target": "TEXT",
    "matched_by": "TEXT NOT NULL",
    "reason_code": "TEXT",
    "detail": "TEXT NOT NULL",
}


@dataclass
class Plan:
    """One build's plan: the identity it is given, each own record's group and signature, and what to build."""

    matches: dict[str, dict[Ref, ident.Match]]
    duplicates: dict[str, list[str]] | None  # companies recorded twice (customers only)
    state: dict[Ref, tuple[str, str]]  # every own record -> (group, signature)
    affected: set[Ref] | None  # own records whose outputs are replaced, with those gone from the raw tables
    feeds: dict[Stream, dict[str, str]]  # a lookup record -> the group it derives values of

    def batches(self, size: int) -> Iterator[dict[Stream, set[str]]]:
        """The records to build (every one, or the affected), as whole groups of about `size` own records
        each with the lookups their groups read: a build holds one batch's records at a time."""
        members: dict[str, list[Ref]] = defaultdict(list)
        for ref in self.state if self.affected is None else self.affected & self.state.keys():
            members[self.state[ref][0]].append(ref)
        fed: dict[str, list[tuple[Stream, str]]] = defaultdict(list)
        for stream, groups in self.feeds.items():
            for rid, group in groups.items():
                if group in members:
                    fed[group].append((stream, rid))
        batch: dict[Stream, set[str]] = defaultdict(set)
        held = 0
        for group, refs in members.items():
            for system, object_type, rid in refs:
                batch[(system, object_type)].add(rid)
            for stream, rid in fed.get(group, ()):
                batch[stream].add(rid)
            held += len(refs)
            if held >= size:
                yield dict(batch)
                batch, held = defaultdict(set), 0
        if held:
            yield dict(batch)


def build_basis(loader: PhaseLoader, decisions_text: str) -> str:
    """What every output depends on besides the raw records: the reads' basis (dictionary, region, reading
    code), the review decisions and the code that builds."""
    digest = hashlib.sha256(reads_basis(loader.dictionary, loader.region).encode())
    digest.update(decisions_text.encode())
    for path in [*sorted(Path(__file__).parent.glob("build/*.py")), Path(ident.__file__), Path(__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_state(warehouse: Warehouse) -> None:
    warehouse.ensure_table(STATE, STATE_COLUMNS)
    warehouse.ensure_table(BASES, BASES_COLUMNS)
    warehouse.ensure_table(MATCHES, MATCHES_COLUMNS)


def _kept_matches(warehouse: Warehouse, name: str, version: str) -> dict[Ref, ident.Match] | None:
    """The matches kept for identity `name` at `version`; None when none are (or they are of another)."""
    ensure_state(warehouse)
    if warehouse.query(f"SELECT basis FROM {BASES} WHERE asset = ?", [f"identity:{name}"]) != [(version,)]:
        return None
    rows = warehouse.query(
        f"SELECT system, object_type, record_id, target, matched_by, reason_code, detail FROM {MATCHES} "
        "WHERE identity = ?",
        [name],
    )
    return {(s, o, r): ident.Match(target, by, reason, detail) for s, o, r, target, by, reason, detail in rows}


def _keep_matches(warehouse: Warehouse, name: str, version: str, matches: dict[Ref, ident.Match]) -> None:
    columns: dict[str, list] = {column: [] for column in MATCHES_COLUMNS}
    for (system, object_type, rid), match in matches.items():
        row = (name, system, object_type, rid, match.target, match.matched_by, match.reason_code, match.detail)
        for column, value in zip(columns, row, strict=True):
            columns[column].append(value)
    with warehouse.transaction() as tx:
        tx.lock_table(MATCHES)  # two builds resolving at once: the second waits, then writes the same
        tx.execute(f"DELETE FROM {MATCHES} WHERE identity = ?", [name])
        tx.append_columns(MATCHES, columns)
        tx.execute(f"DELETE FROM {BASES} WHERE asset = ?", [f"identity:{name}"])
        tx.append(BASES, [{"asset": f"identity:{name}", "basis": version}])


def last_state(warehouse: Warehouse, asset: str, basis: str) -> dict[Ref, tuple[str, str]] | None:
    """The state the asset's last build left, when it was built under `basis` (else None: build everything)."""
    ensure_state(warehouse)
    if warehouse.query(f"SELECT basis FROM {BASES} WHERE asset = ?", [asset]) != [(basis,)]:
        return None
    rows = warehouse.query(
        f"SELECT system, object_type, record_id, group_key, signature FROM {STATE} WHERE asset = ?", [asset]
    )
    return {(s, o, r): (g, sig) for s, o, r, g, sig in rows}


def save_state(tx: Transaction, asset: str, basis: str, plan: Plan) -> None:
    """Stores the state this build leaves, in the transaction of its outputs (so the two always agree)."""
    if plan.affected is None:
        tx.execute(f"DELETE FROM {STATE} WHERE asset = ?", [asset])
        kept = plan.state.items()
    else:
        tx.execute(
            f"DELETE FROM {STATE} WHERE asset = ? AND {REF_SQL} IN (SELECT unnest(?))",
            [asset, ref_texts(plan.affected)],
        )
        kept = [(ref, plan.state[ref]) for ref in plan.affected if ref in plan.state]
    columns: dict[str, list[str]] = {name: [] for name in STATE_COLUMNS}
    for (system, object_type, rid), (group, signature) in kept:
        for name, value in zip(columns, (asset, system, object_type, rid, group, signature), strict=True):
            columns[name].append(value)
    tx.append_columns(STATE, columns)
    tx.execute(f"DELETE FROM {BASES} WHERE asset = ?", [asset])
    tx.append(BASES, [{"asset": asset, "basis": basis}])


# ----------------------------------------------------------------------------------------------- planning


class _Signatures:
    """Own records' groups and what each group depends on, folded into one signature per group."""

    def __init__(self) -> None:
        self.group: dict[Ref, str] = {}
        self.parts: dict[str, list[str]] = defaultdict(list)

    def member(self, ref: Ref, group: str, *inputs: object) -> None:
        self.group[ref] = group
        self.parts[group].append("/".join(ref) + "|" + "|".join(map(_text, inputs)))

    def depends(self, group: str, *inputs: object) -> None:
        self.parts[group].append("|".join(map(_text, inputs)))

    def state(self) -> dict[Ref, tuple[str, str]]:
        signed = {
            group: hashlib.blake2b("\n".join(sorted(parts)).encode(), digest_size=10).hexdigest()
            for group, parts in self.parts.items()
        }
        return {ref: (group, signed[group]) for ref, group in self.group.items()}


def _text(value: object) -> str:
    if value is EMPTY:
        return "<empty>"
    if isinstance(value, ident.Match):
        return f"{value.target}:{value.matched_by}:{value.reason_code}:{value.detail}"
    return str(value)


def _records(ref: Ref, loaded_at: str) -> str:
    return f"{'/'.join(ref)}@{loaded_at}"


class _Planner:
    def __init__(self, loader: PhaseLoader, decisions: Decisions, basis: str) -> None:
        self.loader, self.d, self.decisions, self.basis = loader, loader.dictionary, decisions, basis
        self.warehouse = loader.warehouse
        self.lean: dict[Stream, dict[str, dict]] = {}
        self.matches: dict[str, dict[Ref, ident.Match]] = {}
        self.signatures = _Signatures()
        self.feeds: dict[Stream, dict[str, str]] = {}  # a lookup record -> the group it derives values of
        self.duplicates: dict[str, list[str]] | None = None

    def records(self, stream: Stream) -> dict[str, dict]:
        """The stream's records with their stamps and the paths a build follows (identity's among them)."""
        if stream not in self.lean:
            self.lean[stream] = lean_records(self.warehouse, stream, build_paths(self.d, stream))
        return self.lean[stream]

    def resolve(self, name: str) -> dict[Ref, ident.Match]:
        """Identity `name` over every record, as the builds of one sync share it: resolved by the first build
        that needs it and kept in the warehouse with the versions of the raw tables it read."""
        if name not in self.matches:
            identity = self.d.identity[name]
            target = (identity.target.system, identity.target.object_type)
            streams = {target, *((s.from_.system, s.from_.object_type) for s in identity.steps)}
            streams |= {(target[0], s.match.object_type or target[1]) for s in identity.steps}
            for stream in streams:
                self.warehouse.ensure_raw_table(CATALOG.stream_of(*stream).raw_table)
            versions = [f"{s}={self.warehouse.raw_version(CATALOG.stream_of(*s).raw_table)}" for s in sorted(streams)]
            version = hashlib.sha256("\n".join([self.basis, *versions]).encode()).hexdigest()[:16]
            self.matches[name] = _kept_matches(self.warehouse, name, version)
            if self.matches[name] is None:
                lean = {s: self.records(s) for s in streams}
                self.matches[name] = ident.resolve(self.d, name, lean, self.decisions)
                _keep_matches(self.warehouse, name, version, self.matches[name])
        return self.matches[name]

    def reads(self, stream: Stream, names: list[str]) -> dict[str, tuple[str, list]]:
        self.loader.stage(stream)
        basis = reads_basis(self.d, self.loader.region)
        return read_values(self.loader.warehouse, stream, basis, names)

    # --- per entity

    def customers(self) -> None:
        companies, payers, organizations, contacts, users = OWN["customers"]
        clients, people = self.resolve("customers"), self.resolve("contacts")
        ignored = {decision.key[:3] for decision in self.decisions.decisions if decision.ignore}
        rule = self.d.identity["customers"].duplicates
        compared = list(rule.match_all) if rule else []
        values = self.reads(companies, compared) if compared else {}
        live = {
            rid: compared_values(self.d, dict(zip(compared, values[rid][1], strict=True)), record["payload"])
            for rid, record in self.records(companies).items()
            if not record["is_deleted"] and (*companies, rid) not in ignored and rid in values
        }
        self.duplicates = ident.duplicates(self.d, "customers", live)
        sign = self.signatures
        for rid, record in self.records(companies).items():
            twice = ",".join(self.duplicates.get(rid, ()))
            sign.member((*companies, rid), f"customers|{namespaced_id('crm', rid)}", record["loaded_at"], twice)
        for stream in (payers, organizations):
            for rid, record in self.records(stream).items():
                match = clients[(*stream, rid)]
                group = f"customers|{match.target or '/'.join((*stream, rid))}"
                sign.member((*stream, rid), group, record["loaded_at"], match)
        deals = ("crm", "deals")
        self.feeds[deals] = {}
        for rid, (loaded_at, (customer,)) in self.reads(deals, ["customer_id"]).items():
            if customer is not None:
                group = f"customers|{customer}"
                self.feeds[deals][rid] = group
                sign.depends(group, _records((*deals, rid), loaded_at))
        for rid, record in self.records(contacts).items():
            sign.member((*contacts, rid), f"contacts|{namespaced_id('crm', rid)}", record["loaded_at"])
        for rid, record in self.records(users).items():
            match = people.get((*users, rid), ident.Match(None, "unmatched"))
            key = match.target or namespaced_id("support", record["payload"].get("id", rid))
            client = user_client(self.d, record["payload"], clients)
            sign.member((*users, rid), f"contacts|{key}", record["loaded_at"], match, client)

    def deals(self) -> None:
        deals, invoices = OWN["deals"][0], LOOKUPS["deals"][0]
        billed: dict[str, list[str]] = defaultdict(list)  # a deal's id as read -> the invoices naming it
        self.feeds[invoices] = {}
        named = {}
        for rid, (loaded_at, (deal,)) in self.reads(invoices, ["deal_id"]).items():
            if deal is not None:
                billed[deal].append(_records((*invoices, rid), loaded_at))
                named[rid] = deal
        groups = {}
        for rid, (loaded_at, (deal,)) in self.reads(deals, ["deal_id"]).items():
            group = "/".join((*deals, rid))
            groups[deal] = group
            self.signatures.member((*deals, rid), group, loaded_at, *sorted(billed.get(deal, ())))
        self.feeds[invoices] = {rid: groups[deal] for rid, deal in named.items() if deal in groups}

    def single(self, entity: str) -> None:
        stream = OWN[entity][0]
        matches: dict[Ref, ident.Match] = {}
        for name in ("customers", "contacts") if entity == "tickets" else ("customers",):
            matches.update(self.resolve(name))
        for rid, record in self.records(stream).items():
            found = references(self.d, entity, stream, record["payload"], matches)
            self.signatures.member(
                (*stream, rid),
                "/".join((*stream, rid)),
                record["loaded_at"],
                *(f"{name}={ref}" for name, (ref, _) in sorted(found.items())),
            )


_PLANS: dict[str, Callable[[_Planner], None]] = {
    "customers": _Planner.customers,
    "deals": _Planner.deals,
    "invoices": lambda planner: planner.single("invoices"),
    "payments": lambda planner: planner.single("payments"),
    "tickets": lambda planner: planner.single("tickets"),
}


def plan_build(
    entity: str, loader: PhaseLoader, decisions: Decisions, basis: str, last: dict[Ref, tuple[str, str]] | None
) -> Plan:
    """The plan of one build under `basis`: everything when there is no usable last state, else the groups
    that changed."""
    planner = _Planner(loader, decisions, basis)
    _PLANS[entity](planner)
    state = planner.signatures.state()
    plan = Plan(planner.matches, planner.duplicates, state, affected=None, feeds=planner.feeds)
    if last is None:
        return plan
    changed = {ref for ref, signed in state.items() if last.get(ref) != signed}
    gone = last.keys() - state.keys()
    groups = {state[ref][0] for ref in changed} | {last[ref][0] for ref in changed | gone if ref in last}
    plan.affected = {ref for ref, (group, _) in state.items() if group in groups} | gone
    return plan
