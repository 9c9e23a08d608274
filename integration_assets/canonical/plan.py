"""What a canonical build must redo: the records whose outputs can differ from the last build's.

A build's outputs for a record (its canonical row, its line in the record map, its review items) depend on
the record and on the others it is built with: the members of its group (a client's company, payer and
organization; a person's contact and user), the records its references resolve through (a payment's payer),
the lookups that derive a value (a client's won deals, a deal's invoices), the records that decide its
identity (a domain shared by two companies), and the deletion marks of the records its links name (a deal's
company archived at the source: `build/links.py`).

A build of everything keeps each record's group and its raw row's stamp in `canonical.build_records`, and so
for each lookup record the group it feeds. A later build finds what changed without loading the records that
did not: the rows whose stamp moved or that are gone (compared in the warehouse), the records whose identity
match changed since that build (each match in `canonical.identity_matches` carries the resolution it last
changed in), and what those reach (a user whose organization's client changed, a payment whose payer's, a
company that now looks like another, a deal whose company was archived or restored: the records deleted at the
last build are kept as entries of their own, `MARKED`). It builds again every group they were in or are in now,
with all its members, given the identity matches resolved over every record; nothing else.

What the plan does not follow (the field dictionary, the review decisions, the default region, the code that
builds) is the build's basis: when it differs from the last build's, everything is built again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build import LOOKUPS, MARKS, OWN, Stream
from integration_assets.canonical.build.contacts import user_organization
from integration_assets.canonical.build.customers import compared_values
from integration_assets.canonical.build.links import linked_refs
from integration_assets.canonical.build.single import referenced
from integration_assets.canonical.load import (
    PhaseLoader,
    build_paths,
    deleted_records,
    identity_paths,
    lean_records,
    moved_rows,
    paths_fingerprint,
    read_values,
)
from integration_assets.canonical.matches import (
    BASES,
    BASES_COLUMNS,
    KEYS,
    KEYS_COLUMNS,
    MATCHES,
    MATCHES_COLUMNS,
    KeptMatches,
    Ref,
    keep_matches,
    kept_matches,
    kept_version,
    known_targets,
    moved_sources,
    stamp,
)
from integration_assets.canonical.review import REF_SQL, Decisions, ref_texts
from integration_assets.canonical.staged import reads_basis
from integration_assets.core.warehouse import Transaction, Warehouse, validate_table
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG

__all__ = ["STATE", "Plan", "Ref", "build_basis", "ensure_state", "plan_build", "save_state"]

Entry = tuple[str, str, str]  # a record's group, its raw row's stamp (as text), what else of its own it adds
STATE = "canonical.build_records"  # per asset: each own record and each lookup feeding a group, as built last
STATE_COLUMNS = {
    "asset": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "group_key": "TEXT NOT NULL",  # empty for a lookup record that feeds no group
    "loaded_at": "TEXT NOT NULL",
    "inputs": "TEXT NOT NULL",  # a company's look-alikes (the duplicate rule), MARKED, else empty
}
MARKED = "deleted"  # the `inputs` of a record a build's links name, deleted at the source when it was built
RETIRED = ("canonical.build_state",)  # per-group signatures of an earlier plan: nothing reads them any more
FEEDS: dict[str, Stream] = {"customers": ("crm", "deals"), "deals": LOOKUPS["deals"][0]}  # lookups feeding groups
IDENTITIES: dict[str, tuple[str, ...]] = {  # the identities each build resolves its records through
    "customers": ("customers", "contacts"),
    "deals": (),
    "invoices": ("customers",),
    "payments": ("customers",),
    "tickets": ("customers", "contacts"),
}


@dataclass
class Plan:
    """One build's plan: the identity it is given, the records to build (all, or the affected) with their
    entries to keep, and the lookups feeding each group."""

    matches: dict[str, Mapping[Ref, ident.Match]]
    duplicates: dict[str, list[str]] | None  # companies recorded twice (customers only)
    state: dict[Ref, Entry]  # own records built (every one, or the affected still present) -> entry to keep
    affected: set[Ref] | None  # own records whose outputs are replaced, with those gone from the raw tables
    feeds: dict[Stream, dict[str, str]]  # every lookup record feeding a group -> the group
    fed: dict[Ref, Entry] = field(default_factory=dict)  # lookup records whose entry to keep (all, or changed)
    unfed: set[Ref] = field(default_factory=set)  # lookup records whose kept entry goes (changed or gone)
    seen: dict[str, int] = field(default_factory=dict)  # per identity: the resolution the build used
    identity: dict[str, str] = field(default_factory=dict)  # per identity: kept or resolved anew, and why

    def batches(self, size: int) -> Iterator[dict[Stream, set[str]]]:
        """The records to build (every one, or the affected), as whole groups of about `size` own records
        each with the lookups their groups read: a build holds one batch's records at a time."""
        members: dict[str, list[Ref]] = defaultdict(list)
        for ref, (group, _, _) in self.state.items():
            members[group].append(ref)
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
    here = Path(__file__).parent
    for path in [*sorted(here.glob("build/*.py")), Path(ident.__file__), here / "matches.py", Path(__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_state(warehouse: Warehouse) -> None:
    """The plan's tables; those an earlier release left in another shape are dropped (they only save work:
    without them, the next build of each asset builds everything)."""
    stale = [table for table in RETIRED if warehouse.has_table(table)]
    shapes = {MATCHES: MATCHES_COLUMNS, KEYS: KEYS_COLUMNS}  # the matches and their indexes go together
    if any(_columns(warehouse, table) not in (set(), set(columns)) for table, columns in shapes.items()):
        stale += list(shapes)
    if stale:
        versions = warehouse.has_table(BASES)  # where the versions of the dropped matches were recorded
        with warehouse.transaction() as tx:
            for table in stale:
                tx.execute(f"DROP TABLE IF EXISTS {validate_table(table)}")
            if versions:
                tx.execute(
                    f"DELETE FROM {BASES} WHERE asset LIKE 'identity:%' OR asset LIKE 'inputs:%' "
                    "OR asset LIKE 'targets:%' OR asset LIKE 'run:%'"
                )
    warehouse.ensure_table(STATE, STATE_COLUMNS)
    warehouse.ensure_table(BASES, BASES_COLUMNS)
    for table, columns in shapes.items():
        warehouse.ensure_table(table, columns)


def _columns(warehouse: Warehouse, table: str) -> set[str]:
    schema, name = table.split(".")
    rows = warehouse.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, name]
    )
    return {str(row[0]) for row in rows}


def _bases(warehouse: Warehouse, prefix: str) -> dict[str, str]:
    rows = warehouse.query(f"SELECT asset, basis FROM {BASES} WHERE asset LIKE ?", [prefix + "%"])
    return {str(asset)[len(prefix) :]: str(basis) for asset, basis in rows}


def save_state(tx: Transaction, asset: str, basis: str, plan: Plan) -> None:
    """Stores what this build leaves, in the transaction of its outputs (so the two always agree)."""
    if plan.affected is None:
        tx.execute(f"DELETE FROM {STATE} WHERE asset = ?", [asset])
    elif replaced := plan.affected | plan.unfed:  # the lookups kept anew (`fed`) are among `unfed`
        tx.execute(
            f"DELETE FROM {STATE} WHERE asset = ? AND {REF_SQL} IN (SELECT unnest(?))", [asset, ref_texts(replaced)]
        )
    columns: dict[str, list[str]] = {name: [] for name in STATE_COLUMNS}
    for ref, entry in [*plan.state.items(), *plan.fed.items()]:
        for name, value in zip(columns, (asset, *ref, *entry), strict=True):
            columns[name].append(value)
    tx.append_columns(STATE, columns)
    tx.execute(f"DELETE FROM {BASES} WHERE asset = ? OR asset LIKE ?", [asset, f"{asset}|%"])
    tx.append(
        BASES,
        [
            {"asset": asset, "basis": basis},
            *({"asset": f"{asset}|{name}", "basis": str(number)} for name, number in plan.seen.items()),
        ],
    )


def incremental_possible(warehouse: Warehouse, entity: str, basis: str) -> bool:
    """Whether the asset's last build left what a build of the changes needs: its records built under this
    basis, and the identity resolution it used."""
    asset = f"canonical/{entity}"
    if warehouse.query(f"SELECT basis FROM {BASES} WHERE asset = ?", [asset]) != [(basis,)]:
        return False
    return set(IDENTITIES[entity]) <= _bases(warehouse, f"{asset}|").keys()


# ----------------------------------------------------------------------------------------------- planning


def _identity_streams(d: FieldDictionary, name: str) -> set[Stream]:
    """The streams identity `name` reads: its targets' (`_target_streams`) and the sources its steps match."""
    return _target_streams(d, name) | set(ident.sources(d.identity[name]))


def _target_streams(d: FieldDictionary, name: str) -> set[Stream]:
    """The streams holding identity `name`'s targets and the values its steps look up in them."""
    identity = d.identity[name]
    target = (identity.target.system, identity.target.object_type)
    return {target} | {(target[0], s.match.object_type or target[1]) for s in identity.steps}


class _Planner:
    """Works out the entries of one build's records: every one (a build of everything), or what changed and
    the groups it reaches (`incremental`)."""

    def __init__(
        self, entity: str, loader: PhaseLoader, decisions: Decisions, basis: str, incremental: bool, run_id: str
    ):
        self.entity, self.asset = entity, f"canonical/{entity}"
        self.loader, self.d, self.decisions, self.basis = loader, loader.dictionary, decisions, basis
        self.warehouse = loader.warehouse
        self.incremental = incremental
        self.run_id = run_id  # a rebuild resolves identity anew once per run (`resolve`)
        self.lean: dict[Stream, dict[str, dict]] = {}
        self.matches: dict[str, Mapping[Ref, ident.Match]] = {}
        self.naming: dict[Stream, Callable[[dict], Iterable[Ref | None]]] = {}  # what a record's identity reads through
        self.seen: dict[str, int] = {}
        self.how: dict[str, str] = {}  # per identity: kept or resolved anew, and why
        self.duplicates: dict[str, list[str]] | None = None
        self.feeds: dict[Stream, dict[str, str]] = {}  # lookup record -> the group it feeds
        self.feed_stamps: dict[Stream, dict[str, str]] = {}  # lookup record -> its raw row's stamp
        self.state: dict[Ref, Entry] = {}
        self.affected: set[Ref] | None = None
        self.fed: dict[Ref, Entry] = {}
        self.unfed: set[Ref] = set()
        self._moved: dict[Stream, tuple[set[str], dict[str, str]]] = {}

    # --- what every plan reads

    def records(self, stream: Stream, ids: set[str] | None = None) -> dict[str, dict]:
        """The stream's records with their stamps and the paths a build follows (identity's among them):
        every one (kept for the rest of the plan), or those of `ids`."""
        if stream in self.lean:
            return self.lean[stream] if ids is None else {r: v for r, v in self.lean[stream].items() if r in ids}
        if ids is not None:
            return lean_records(self.warehouse, stream, build_paths(self.d, stream), ids)
        self.lean[stream] = lean_records(self.warehouse, stream, build_paths(self.d, stream))
        return self.lean[stream]

    def resolve(self, name: str) -> Mapping[Ref, ident.Match]:
        """Identity `name` over every record, as the builds of one sync share it: resolved by the first build
        that needs it and kept in the warehouse with the versions of the raw tables it read. When those moved
        but no path identity reads did (a phone or an industry edited), the kept matches still hold; when no
        value of a target record did, only the source records loaded since are matched again (`matches.py`)."""
        if name not in self.matches:
            streams = sorted(_identity_streams(self.d, name))
            for stream in streams:
                self.warehouse.ensure_raw_table(CATALOG.stream_of(*stream).raw_table)
            version = self._version(
                f"{s}={self.warehouse.raw_version(CATALOG.stream_of(*s).raw_table)}" for s in streams
            )
            # a rebuild trusts no kept match: the first of its run to need the identity resolves it anew
            anew = self.loader.restage and kept_version(self.warehouse, name, "run") != self.run_id
            kept = None if anew else kept_matches(self.warehouse, name, version)
            self.how[name] = "kept: its raw tables did not change"
            if kept is None:
                self.how[name] = "kept: no value it reads changed"
                prints = {s: paths_fingerprint(self.warehouse, s, identity_paths(self.d, s)) for s in streams}
                versions = {
                    "identity": version,
                    "inputs": self._version(f"{s}={p}" for s, p in prints.items()),
                    "targets": self._version(f"{s}={prints[s]}" for s in _target_streams(self.d, name)),
                }
                kept = None if anew else kept_matches(self.warehouse, name, versions["inputs"], by="inputs")
                if kept is not None:
                    with self.warehouse.transaction() as tx:
                        stamp(tx, name, {"identity": version, "inputs": versions["inputs"]})
                elif not anew and kept_version(self.warehouse, name, "targets") == versions["targets"]:
                    kept = self._rematch(name, versions)
                else:
                    self.how[name] = "resolved anew"
                    lean = {s: self.records(s) for s in streams}
                    targets = ident.Targets(self.d.identity[name], lean)
                    matches = ident.resolve(self.d, name, lean, self.decisions, targets=targets)
                    stamped = {**versions, "run": self.run_id} if anew else versions
                    number = keep_matches(self.warehouse, name, stamped, matches, lean, targets=targets, force=anew)
                    kept = matches, number
            self.matches[name], self.seen[name] = kept
        return self.matches[name]

    def _rematch(self, name: str, versions: dict[str, str]) -> tuple[Mapping[Ref, ident.Match], int]:
        """Identity `name` when no value of a target record changed: the source records loaded since their
        match (or gone) are matched again against the kept indexes; every other match holds."""
        identity = self.d.identity[name]
        raw: ident.RawIndex = {}
        gone: set[Ref] = set()
        for stream in ident.sources(identity):
            loaded, removed = moved_sources(self.warehouse, name, stream)
            raw[stream] = lean_records(self.warehouse, stream, identity_paths(self.d, stream), loaded)
            gone |= {(*stream, rid) for rid in removed}
        owners = {d.owner for d in self.decisions.decisions if d.owner and not d.ignore}
        targets = known_targets(self.warehouse, identity, name, raw, owners)
        found = ident.resolve(self.d, name, raw, self.decisions, targets=targets)
        kept = {kind: versions[kind] for kind in ("identity", "inputs")}  # the targets' version holds
        keep_matches(self.warehouse, name, kept, found, raw, only=set(found) | gone)
        self.how[name] = f"matched again: {len(found) + len(gone)} source records loaded since (targets unchanged)"
        return kept_matches(self.warehouse, name)  # every record's, read as asked (another build's meanwhile too)

    def _version(self, parts: Iterable[str]) -> str:
        """A version of the parts (in any order: each build runs in a process of its own, with its own order of
        a set's items) under the build's basis."""
        return hashlib.sha256("\n".join([self.basis, *sorted(parts)]).encode()).hexdigest()[:16]

    def reads(self, stream: Stream, names: list[str], ids: set[str] | None = None) -> dict[str, tuple[str, list]]:
        self.loader.stage(stream)
        basis = reads_basis(self.d, self.loader.region)
        return read_values(self.loader.warehouse, stream, basis, names, ids)

    def feeding(self, stream: Stream) -> set[str] | None:
        """The lookup records of `stream` whose group to read: every one, or (a build of the changes) those
        loaded since the last build; the others' are kept (`changes`)."""
        return self.moved(stream)[0] if self.incremental else None

    def feed(self, stream: Stream, groups: dict[str, tuple[str, str | None]]) -> None:
        """The lookup records of `stream`: id -> (its stamp, the group it feeds or None)."""
        self.feeds[stream] = {rid: group for rid, (_, group) in groups.items() if group is not None}
        self.feed_stamps[stream] = {rid: stamp for rid, (stamp, _) in groups.items()}

    # --- what changed since the asset's last build (a build of the changes only)

    def moved(self, stream: Stream) -> tuple[set[str], dict[str, str]]:
        """The stream's rows loaded since the last build (or new), and those gone with the group they were in."""
        if stream not in self._moved:
            kept = (
                f"SELECT record_id, loaded_at, group_key FROM {STATE} WHERE asset = ? AND system = ? "
                "AND object_type = ?"
            )
            loaded, gone = moved_rows(self.warehouse, stream, kept, [self.asset, *stream])
            self._moved[stream] = loaded, {str(rid): str(group) for rid, _, group in gone}
        return self._moved[stream]

    def rematched(self, name: str) -> set[Ref]:
        """The records identity `name` matches otherwise than at the asset's last build (or no longer)."""
        since = int(_bases(self.warehouse, f"{self.asset}|").get(name, "0"))
        rows = self.warehouse.query(
            f"SELECT system, object_type, record_id FROM {MATCHES} WHERE identity = ? AND changed_in > ?",
            [name, since],
        )
        return {(str(s), str(o), str(r)) for s, o, r in rows}

    def referring(self, stream: Stream, names: Callable[[dict], Iterable[Ref | None]], rematched: set[Ref]) -> set[Ref]:
        """The records of `stream` that refer (`names`) to a record whose match changed."""
        if not rematched:
            return set()
        return {
            (*stream, rid)
            for rid, record in self.records(stream).items()
            if any(ref in rematched for ref in names(record["payload"]))
        }

    def changes(self, entry: Callable[[Ref, dict], Entry], extra: set[Ref]) -> None:
        """A build of the changes: the own records whose row moved, is new or is gone, and those `extra` names
        (a match or a look-alike changed), each with every member of the groups it was in and is in now; and
        the groups a lookup record that moved fed before and feeds now."""
        changed, gone = set(extra), {}
        for stream in OWN[self.entity]:
            loaded, removed = self.moved(stream)
            changed |= {(*stream, rid) for rid in loaded}
            gone |= {(*stream, rid): group for rid, group in removed.items()}
        present = changed - gone.keys()
        self._load_matches(present)  # what the entries of the changed records read
        self.state = self.entries(present, entry)
        groups = {group for group, _, _ in self.state.values()} | set(gone.values())
        groups |= {group for group, _, _ in self._kept(refs=present).values()}
        for stream, groups_now in self.feeds.items():
            loaded, removed = self.moved(stream)
            moved = {(*stream, rid) for rid in loaded}
            groups |= {group for group, _, _ in self._kept(refs=moved).values()} | set(removed.values())
            groups |= {groups_now[rid] for rid in loaded if rid in groups_now}
            self.unfed |= moved | {(*stream, rid) for rid in removed}
            self.fed |= {ref: (groups_now.get(ref[2], ""), self.feed_stamps[stream][ref[2]], "") for ref in moved}
        members = self._kept(groups=groups - {""})
        self.state |= {ref: kept for ref, kept in members.items() if ref not in present}
        self.affected = changed | gone.keys() | members.keys()
        built = {group for group, _, _ in self.state.values()}
        for stream, groups_now in self.feeds.items():  # the lookups that did not move feed the groups they fed
            kept = self._kept(groups=built, stream=stream)
            moved = self.moved(stream)[0] | self.moved(stream)[1].keys()
            self.feeds[stream] = {ref[2]: g for ref, (g, _, _) in kept.items() if ref[2] not in moved} | groups_now
        named: set[Ref | None] = set(self.state)  # the build reads the matches of its records and those they name
        for stream, names in self.naming.items():
            ids = {rid for system, object_type, rid in self.state if (system, object_type) == stream}
            named.update(ref for record in self.records(stream, ids).values() for ref in names(record["payload"]))
        self._load_matches(named - {None})

    def _load_matches(self, refs: Iterable[Ref] | None = None) -> None:
        """Reads the kept matches of `refs` (every one, without) before the plan or the build asks for them
        one by one."""
        for found in self.matches.values():
            if isinstance(found, KeptMatches):
                found.load(refs)

    def _kept(
        self, *, refs: set[Ref] | None = None, groups: set[str] | None = None, stream: Stream | None = None
    ) -> dict[Ref, Entry]:
        """The entries the last build kept: those of `refs` (own or lookup records), or the records in `groups`
        (its own members, or the lookup records of `stream` feeding them)."""
        if not (refs or groups):
            return {}
        chosen, values = (REF_SQL, ref_texts(refs)) if refs else ("group_key", sorted(groups or ()))
        rows = self.warehouse.query(
            f"SELECT system, object_type, record_id, group_key, loaded_at, inputs FROM {STATE} "
            f"WHERE asset = ? AND {chosen} IN (SELECT unnest(?))",
            [self.asset, values],
        )
        wanted = set(OWN[self.entity]) if stream is None else {stream}
        return {(s, o, r): (g, at, inputs) for s, o, r, g, at, inputs in rows if refs or (s, o) in wanted}

    def everything(self, entry: Callable[[Ref, dict], Entry]) -> None:
        """A build of everything: the entry of every own record and every lookup record feeding a group."""
        for stream in OWN[self.entity]:
            for rid, record in self.records(stream).items():
                self.state[(*stream, rid)] = entry((*stream, rid), record)
        for stream, groups in self.feeds.items():
            self.fed |= {(*stream, rid): (groups.get(rid, ""), at, "") for rid, at in self.feed_stamps[stream].items()}

    def entries(self, refs: set[Ref], entry: Callable[[Ref, dict], Entry]) -> dict[Ref, Entry]:
        by_stream: dict[Stream, set[str]] = defaultdict(set)
        for system, object_type, rid in refs:
            by_stream[(system, object_type)].add(rid)
        found: dict[Ref, Entry] = {}
        for stream, ids in by_stream.items():
            for rid, record in self.records(stream, ids).items():
                found[(*stream, rid)] = entry((*stream, rid), record)
        return found

    def plan(self, entry: Callable[[Ref, dict], Entry], extra: Callable[[], set[Ref]]) -> None:
        """Everything, or the changes (`extra`: what changed besides the rows, asked only then)."""
        if self.incremental:
            self.changes(entry, extra())
        else:
            self._load_matches()
            self.everything(entry)

    # --- per entity

    def customers(self) -> None:
        companies, payers, organizations, contacts, users = OWN["customers"]
        clients, people = self.resolve("customers"), self.resolve("contacts")
        self.naming[users] = lambda payload: [user_organization(self.d, payload)]
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
        deals = FEEDS["customers"]
        found = self.reads(deals, ["customer_id"], self.feeding(deals))
        self.feed(deals, {rid: (at, None if c is None else f"customers|{c}") for rid, (at, (c,)) in found.items()})

        def entry(ref: Ref, record: dict) -> Entry:
            stream, rid = ref[:2], ref[2]
            group, inputs = "", ""
            if stream == companies:
                group, inputs = f"customers|{namespaced_id('crm', rid)}", ",".join(self.duplicates.get(rid, ()))
            elif stream in (payers, organizations):
                group = f"customers|{clients[ref].target or '/'.join(ref)}"
            elif stream == contacts:
                group = f"contacts|{namespaced_id('crm', rid)}"
            else:
                match = people.get(ref, ident.Match(None, "unmatched"))
                group = f"contacts|{match.target or namespaced_id('support', record['payload'].get('id', rid))}"
            return group, record["loaded_at"], inputs

        def extra() -> set[Ref]:
            rematched = self.rematched("customers") | self.rematched("contacts")
            found = {ref for ref in rematched if ref[:2] in (payers, organizations, users)}
            found |= self.referring(users, self.naming[users], rematched)
            twice = {(*companies, rid): ",".join(others) for rid, others in self.duplicates.items()}
            before = self.warehouse.query(
                f"SELECT record_id, inputs FROM {STATE} WHERE asset = ? AND system = ? AND object_type = ? "
                "AND inputs <> ''",
                [self.asset, *companies],
            )
            was = {(*companies, str(rid)): str(inputs) for rid, inputs in before}
            return found | {ref for ref in twice.keys() | was.keys() if twice.get(ref) != was.get(ref)}

        self.plan(entry, extra)

    def remarked(self) -> set[Ref]:
        """The records the entity's links name (`MARKS`) deleted at the source or restored since its last build.

        The deleted ones are kept as entries of no group (`MARKED`), replaced at every build: a few rows (the
        deleted records only), against which the next build compares."""
        now: dict[Ref, str] = {}
        for stream in MARKS.get(self.entity, ()):
            now |= {(*stream, rid): r["loaded_at"] for rid, r in deleted_records(self.warehouse, stream).items()}
        self.fed |= {ref: ("", at, MARKED) for ref, at in now.items()}
        if not self.incremental:
            return set()
        rows = self.warehouse.query(
            f"SELECT system, object_type, record_id FROM {STATE} WHERE asset = ? AND inputs = ?", [self.asset, MARKED]
        )
        before = {(str(system), str(object_type), str(rid)) for system, object_type, rid in rows}
        self.unfed |= before
        return before ^ now.keys()

    def deals(self) -> None:
        deals, invoices = OWN["deals"][0], FEEDS["deals"]
        groups = {deal: "/".join((*deals, rid)) for rid, (_, (deal,)) in self.reads(deals, ["deal_id"]).items()}
        found = self.reads(invoices, ["deal_id"], self.feeding(invoices))
        self.feed(invoices, {rid: (at, groups.get(deal) if deal else None) for rid, (at, (deal,)) in found.items()})
        remarked = self.remarked()

        def extra() -> set[Ref]:  # the deals naming a company or contact deleted or restored since the last build
            return self.referring(deals, lambda payload: linked_refs(self.d, "deals", deals, payload), remarked)

        self.plan(lambda ref, record: ("/".join(ref), record["loaded_at"], ""), extra)

    def single(self) -> None:
        stream = OWN[self.entity][0]
        for name in IDENTITIES[self.entity]:
            self.resolve(name)
        self.naming[stream] = lambda payload: referenced(self.d, self.entity, stream, payload)

        def extra() -> set[Ref]:
            rematched = set().union(*(self.rematched(name) for name in IDENTITIES[self.entity]))
            return self.referring(stream, self.naming[stream], rematched)

        self.plan(lambda ref, record: ("/".join(ref), record["loaded_at"], ""), extra)


_PLANS: dict[str, Callable[[_Planner], None]] = {
    "customers": _Planner.customers,
    "deals": _Planner.deals,
    "invoices": _Planner.single,
    "payments": _Planner.single,
    "tickets": _Planner.single,
}


def plan_build(
    entity: str, loader: PhaseLoader, decisions: Decisions, basis: str, *, incremental: bool, run_id: str = ""
) -> Plan:
    """The plan of one build under `basis` (the plan's tables ensured: `ensure_state`): everything, or
    (`incremental`, which `incremental_possible` says the last build allows) what changed since the last build
    and the groups it reaches."""
    planner = _Planner(entity, loader, decisions, basis, incremental, run_id)
    _PLANS[entity](planner)
    return Plan(
        planner.matches,
        planner.duplicates,
        planner.state,
        planner.affected,
        planner.feeds,
        fed=planner.fed,
        unfed=planner.unfed,
        seen=planner.seen,
        identity=planner.how,
    )
