"""Identity matches kept in the warehouse, so the builds of one sync resolve identity once and a later sync
resolves again only what changed.

Each match is kept with the resolution that last changed it (`changed_in`; a record gone stays, `present =
false`) and the raw row's stamp it was matched at (`loaded_at`). A resolution over every record also keeps
the targets' indexes (`canonical.identity_keys`: each normalized value a step looks up, and the live target
it names) with a digest of the target records' values identity reads. While that digest holds, a record's
match depends on nothing but its own values and the people's decisions, so a later resolution matches again
only the source records loaded since (`moved_sources`), looking their values up in the kept indexes
(`known_targets`).

The versions the kept rows hold at are rows of `canonical.build_bases`: `identity:<name>` (the raw tables'),
`inputs:<name>` (the values identity reads), `targets:<name>` (the target records' values), and `run:<name>`
(the run of the last rebuild that resolved it anew).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import overload

from integration_assets.canonical import identity as ident
from integration_assets.canonical.load import moved_rows
from integration_assets.canonical.review import REF_SQL, ref_texts
from integration_assets.core.warehouse import Transaction, Warehouse, validate_table
from integration_assets.mapping.schema import Identity
from integration_assets.systems import CATALOG

__all__ = [
    "BASES",
    "KEYS",
    "MATCHES",
    "KeptMatches",
    "Ref",
    "keep_matches",
    "kept_matches",
    "kept_version",
    "known_targets",
    "moved_sources",
    "stamp",
]

Ref = tuple[str, str, str]  # system, object_type, record id
BASES = "canonical.build_bases"  # per asset: its basis, the resolution of each identity it last built with; versions
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
    "present": "BOOLEAN NOT NULL",  # false: the record was resolved before and is gone (kept to say it changed)
    "changed_in": "BIGINT NOT NULL",  # the resolution (1, 2, ...) that gave the record this match
    "loaded_at": "TEXT NOT NULL",  # the raw row's stamp the record was matched at (empty once gone)
}
KEYS = "canonical.identity_keys"  # per identity: the targets' indexes of its last resolution over every record
KEYS_COLUMNS = {
    "identity": "TEXT NOT NULL",
    "index_name": "TEXT NOT NULL",
    "key": "TEXT NOT NULL",
    "target": "TEXT NOT NULL",
}


def kept_version(warehouse: Warehouse, name: str, kind: str) -> str | None:
    """The version of `kind` (identity, inputs, targets) identity `name`'s kept rows hold at, if any."""
    rows = warehouse.query(f"SELECT basis FROM {BASES} WHERE asset = ?", [f"{kind}:{name}"])
    return str(rows[0][0]) if rows else None


def stamp(tx: Transaction, name: str, kept: dict[str, str]) -> None:
    """Records the versions the kept rows of identity `name` hold at (`identity`: of the raw tables, `inputs`:
    of the values identity reads, `targets`: of the target records' values)."""
    keys = [f"{kind}:{name}" for kind in kept]
    tx.execute(f"DELETE FROM {BASES} WHERE asset IN (SELECT unnest(?))", [keys])
    tx.append(BASES, [{"asset": f"{kind}:{name}", "basis": version} for kind, version in kept.items()])


class KeptMatches(Mapping[Ref, ident.Match]):
    """Identity `name`'s kept matches, read from the warehouse as a build asks for them: all at once (`load()`),
    or those of the records it names (`load(refs)`; a build of the changes needs a few thousand of several
    hundred thousand). A record asked for that was not loaded is read alone, so a lookup is never wrong, only
    slower."""

    def __init__(self, warehouse: Warehouse, name: str) -> None:
        self.warehouse, self.name = warehouse, name
        self._known: dict[Ref, ident.Match | None] = {}
        self._complete = False

    def load(self, refs: Iterable[Ref] | None = None) -> KeptMatches:
        """Reads the matches of `refs` (every one, without), once each."""
        if self._complete:
            return self
        wanted = None if refs is None else {ref for ref in refs if ref is not None and ref not in self._known}
        if wanted is not None and not wanted:
            return self
        rows = _match_rows(self.warehouse.query, self.name, wanted)
        if wanted is not None:
            self._known.update(dict.fromkeys(wanted))  # asked for and not kept: no match
        self._known.update({ref: match for ref, (match, _) in rows.items()})  # a record gone: no match
        self._complete = wanted is None
        return self

    def __getitem__(self, ref: Ref) -> ident.Match:
        if ref not in self._known:
            self.load([ref])
        found = self._known.get(ref)
        if found is None:
            raise KeyError(ref)
        return found

    def __iter__(self) -> Iterator[Ref]:
        return (ref for ref, match in self.load()._known.items() if match is not None)

    def __len__(self) -> int:
        return sum(1 for match in self.load()._known.values() if match is not None)


@overload
def kept_matches(warehouse: Warehouse, name: str) -> tuple[KeptMatches, int]: ...
@overload
def kept_matches(
    warehouse: Warehouse, name: str, version: str, *, by: str = "identity"
) -> tuple[KeptMatches, int] | None: ...
def kept_matches(
    warehouse: Warehouse, name: str, version: str | None = None, *, by: str = "identity"
) -> tuple[KeptMatches, int] | None:
    """The matches kept for identity `name` at `version` (of the raw tables, or `by` "inputs": of the paths
    identity reads), read as asked (`KeptMatches`), and the resolution that made them; None when none are (or
    they are of another). Without a version, whatever is kept."""
    if version is not None and kept_version(warehouse, name, by) != version:
        return None
    ((last,),) = warehouse.query(f"SELECT coalesce(max(changed_in), 0) FROM {MATCHES} WHERE identity = ?", [name])
    return KeptMatches(warehouse, name), int(last)


def _match_rows(
    query: Callable[[str, list], list[tuple]], name: str, refs: set[Ref] | None = None
) -> dict[Ref, tuple[ident.Match | None, int]]:
    """Identity `name`'s kept rows (of `refs` only, when given): each record's match (None: gone since) and
    the resolution that gave it."""
    chosen, params = (f" AND {REF_SQL} IN (SELECT unnest(?))", [ref_texts(refs)]) if refs is not None else ("", [])
    rows = query(
        f"SELECT system, object_type, record_id, target, matched_by, reason_code, detail, present, changed_in "
        f"FROM {MATCHES} WHERE identity = ?{chosen}",
        [name, *params],
    )
    return {
        (s, o, r): (ident.Match(target, by, reason, detail) if present else None, int(changed))
        for s, o, r, target, by, reason, detail, present, changed in rows
    }


def keep_matches(
    warehouse: Warehouse,
    name: str,
    kept: dict[str, str],
    matches: dict[Ref, ident.Match],
    records: ident.RawIndex,
    *,
    targets: ident.Targets | None = None,
    only: set[Ref] | None = None,
    force: bool = False,
) -> int:
    """Keeps identity `name`'s matches at the versions `kept` (identity, inputs, targets), each with the raw
    row's stamp of its record (in `records`, the records matched) and the resolution that gave it its match, so
    a build can ask what changed since its own last one. `matches` is every record's, or (`only`) those of the
    records `only` names (one not in `matches` is gone). With `targets`, their indexes are kept too. Unless
    `force`d (a rebuild resolves anew whatever is kept), matches another build kept meanwhile at the same
    version stay. Returns this resolution's number."""
    columns: dict[str, list] = {column: [] for column in MATCHES_COLUMNS}

    def row(ref: Ref, match: ident.Match | None, changed_in: int) -> None:
        found = match or ident.Match(None, "")
        values = (name, *ref, found.target, found.matched_by, found.reason_code, found.detail, match is not None)
        stamped = records.get(ref[:2], {}).get(ref[2]) if match is not None else None
        loaded_at = stamped["loaded_at"] if stamped is not None else ""
        for column, value in zip(columns, (*values, changed_in, loaded_at), strict=True):
            columns[column].append(value)

    with warehouse.transaction() as tx:
        tx.lock_table(MATCHES)  # two builds resolving at once: the second waits, then finds the first's
        ((last,),) = tx.execute(f"SELECT coalesce(max(changed_in), 0) FROM {MATCHES} WHERE identity = ?", [name])
        same = tx.execute(f"SELECT basis FROM {BASES} WHERE asset = ?", [f"identity:{name}"]) == [(kept["identity"],)]
        if same and not force:
            return int(last)  # kept meanwhile by another build, from the same records
        number = int(last) + 1
        before = _match_rows(tx.execute, name, only)
        for ref, match in matches.items():
            old = before.get(ref)
            row(ref, match, old[1] if old is not None and old[0] == match else number)
        for ref, (old, changed) in before.items():
            if ref not in matches:
                row(ref, None, changed if old is None else number)
        if only is None:
            tx.execute(f"DELETE FROM {MATCHES} WHERE identity = ?", [name])
        else:
            tx.execute(
                f"DELETE FROM {MATCHES} WHERE identity = ? AND {REF_SQL} IN (SELECT unnest(?))", [name, ref_texts(only)]
            )
        tx.append_columns(MATCHES, columns)
        if targets is not None:
            _keep_index(tx, name, targets)
        stamp(tx, name, kept)
    return number


def _keep_index(tx: Transaction, name: str, targets: ident.Targets) -> None:
    columns: dict[str, list[str]] = {column: [] for column in KEYS_COLUMNS}
    for index, entries in targets.indexes().items():
        for key, found in entries.items():
            for target in found:
                for column, value in zip(columns, (name, index, key, target), strict=True):
                    columns[column].append(value)
    tx.execute(f"DELETE FROM {KEYS} WHERE identity = ?", [name])
    tx.append_columns(KEYS, columns)


def moved_sources(warehouse: Warehouse, name: str, stream: tuple[str, str]) -> tuple[set[str], set[str]]:
    """The stream's records identity `name` must match again: rows loaded since their match (or new), and
    the records matched before whose rows are gone."""
    kept = (
        f"SELECT record_id, loaded_at FROM {MATCHES} WHERE identity = ? AND system = ? AND object_type = ? AND present"
    )
    loaded, gone = moved_rows(warehouse, stream, kept, [name, *stream])
    return loaded, {str(row[0]) for row in gone}


def known_targets(
    warehouse: Warehouse, identity: Identity, name: str, raw: ident.RawIndex, owners: set[str]
) -> ident.KnownTargets:
    """What matching `raw`'s source records needs of the targets, read from the kept indexes: the entries
    their values look up, and which of the targets people's decisions name (`owners`) are live."""
    wanted = {
        pair
        for stream, records in raw.items()
        for r in records.values()
        for pair in ident.looked_up(identity, stream, r["payload"])
    }
    entries: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    rows = warehouse.query(
        f"SELECT index_name, key, target FROM {KEYS} WHERE identity = ? AND key IN (SELECT unnest(?))",
        [name, sorted({key for _, key in wanted}) or [""]],
    )
    for index, key, target in rows:
        if (index, key) in wanted:
            entries[str(index)][str(key)].add(str(target))
    system = identity.target.system
    table = validate_table(CATALOG.stream_of(system, identity.target.object_type).raw_table)
    named = sorted(owner.removeprefix(f"{system}:") for owner in owners if owner.startswith(f"{system}:"))
    live = warehouse.query(
        f"SELECT CAST(id AS TEXT) FROM {table} WHERE NOT is_deleted AND id IN (SELECT unnest(?))", [named or [""]]
    )
    return ident.KnownTargets(identity, entries, {f"{system}:{row[0]}" for row in live})
