"""The raw records one canonical build reads, loaded as lean as the build allows.

No build reads a whole payload any more. An entity's own streams, and the lookups it reads as records (deals
read invoices, customers read deals), come as their staged reads (`staged.py`: each record read once per
version, only the rows loaded since the last build read anew) plus the few payload paths the build itself
follows: the identity steps' paths, references to other records, the duplicate rule's fields. The lookups read
only by identity resolution (a payment names its client through billing's customers, resolved against CRM
companies and contacts) come as the identity paths alone. The paths are extracted in the warehouse.

A lean payload holds the value at each of those paths; where the whole payload has nothing (a key absent, or
null on the way), the lean one has no key, which the build reads alike (an empty value). Tests build both ways
and compare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build import IDENTITY_ONLY_LOOKUPS, READ_AS, Phase, Stream, phases_of
from integration_assets.canonical.staged import STAGED_READS, Staged, reads_basis, stage_stream
from integration_assets.core.warehouse import Warehouse, json_path, json_value, validate_table
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG

__all__ = [
    "IDENTITY_ONLY_LOOKUPS",
    "Loaded",
    "PhaseLoader",
    "build_paths",
    "deleted_fingerprint",
    "deleted_records",
    "identity_paths",
    "lean_records",
    "load_raw",
    "moved_rows",
    "paths_fingerprint",
    "read_values",
]

_ATTEMPTS = 3  # a row loaded again between staging and loading is staged again, this many times at most


class PhaseLoader:
    """The records of each phase of a build (`build_entity` calls it as each phase starts), their reads staged
    first; `staged` says what staging did per stream."""

    def __init__(
        self,
        warehouse: Warehouse,
        dictionary: FieldDictionary,
        *,
        default_region: str | None = None,
        restage: bool = False,
        identity: bool = True,
    ) -> None:
        self.warehouse, self.dictionary, self.region, self.restage = warehouse, dictionary, default_region, restage
        self.identity = identity  # False: the build is given its identity matches, so no phase loads lookups for them
        self.only: dict[Stream, set[str]] | None = None  # the records of each stream to load (None: all)
        self.staged: dict[Stream, Staged] = {}

    def __call__(self, phase: Phase) -> ident.RawIndex:
        raw = {stream: self.identity_records(stream) for stream in phase.identity_only if self.identity}
        raw.update({stream: deleted_records(self.warehouse, stream) for stream in phase.marks})
        raw.update({stream: self.records(stream) for stream in phase.streams})
        return raw

    def stage(self, stream: Stream) -> None:
        """Brings the stream's staged reads up to date (a rebuild reads each stream anew once)."""
        restage = self.restage and stream not in self.staged
        staged = stage_stream(
            self.warehouse, stream, READ_AS[stream], self.dictionary, default_region=self.region, restage=restage
        )
        read = staged.read + (self.staged[stream].read if stream in self.staged else 0)
        # reused: the records whose read was staged before this build (those it staged are read, not reused)
        self.staged[stream] = Staged(read, max(staged.read + staged.reused - read, 0))

    def records(self, stream: Stream) -> dict[str, dict]:
        """id -> {payload (the paths the build follows), is_deleted, read, contract}, staged first (staging
        ensures the raw table); only the ids `only` names, when it is set."""
        ids = None if self.only is None else self.only.get(stream, set())
        if ids is not None and not ids:
            return {}
        for attempt in range(_ATTEMPTS):
            if attempt or stream not in self.staged:  # staged once per build; again when a row changed since
                self.stage(stream)
            paths = build_paths(self.dictionary, stream)
            records = _staged_records(self.warehouse, stream, paths, reads_basis(self.dictionary, self.region), ids)
            if records is not None:
                return records
        table = CATALOG.stream_of(*stream).raw_table
        raise RuntimeError(f"{table} kept changing while its reads were staged ({_ATTEMPTS} attempts)")

    def identity_records(self, stream: Stream) -> dict[str, dict]:
        """id -> {payload (the identity steps' paths), is_deleted}: a record only identity resolution reads."""
        return lean_records(self.warehouse, stream, identity_paths(self.dictionary, stream))


@dataclass
class Loaded:
    """Every record of a build at once, and what staging their reads did per stream."""

    raw: ident.RawIndex
    staged: dict[Stream, Staged] = field(default_factory=dict)


def load_raw(
    warehouse: Warehouse,
    entity: str,
    dictionary: FieldDictionary,
    *,
    default_region: str | None = None,
    restage: bool = False,
) -> Loaded:
    """Every raw record the entity's build reads, all phases at once (a stream one phase reads whole and another
    for identity only comes whole)."""
    loader = PhaseLoader(warehouse, dictionary, default_region=default_region, restage=restage)
    phases = phases_of(entity)
    whole = {stream for phase in phases for stream in phase.streams}
    raw = {s: loader.identity_records(s) for phase in phases for s in phase.identity_only if s not in whole}
    raw.update({s: deleted_records(warehouse, s) for phase in phases for s in phase.marks if s not in whole})
    raw.update({stream: loader.records(stream) for phase in phases for stream in phase.streams})
    return Loaded(raw, loader.staged)


def build_paths(dictionary: FieldDictionary, stream: Stream) -> set[str]:
    """The payload paths a build follows in records of `stream`: identity's, the references to other records
    (a payment's customer, a user's organization), and the fields the duplicate rule compares raw."""
    return identity_paths(dictionary, stream) | _linked_paths(dictionary, stream)


def _linked_paths(dictionary: FieldDictionary, stream: Stream) -> set[str]:
    """The payload paths a build follows in records of `stream` besides identity's: the references to other
    records (a payment's customer, a user's organization), the fields the duplicate rule compares raw, the id."""
    paths = {"id"}
    for spec in (f for entity in dictionary.entities.values() for f in entity.fields.values()):
        source = spec.sources.get(stream[0])
        if spec.references and source is not None and source.object_type == stream[1] and source.path:
            paths.add(source.path)
    for name, identity in dictionary.identity.items():
        if identity.duplicates is not None and (identity.target.system, identity.target.object_type) == stream:
            for field_name in identity.duplicates.match_all:
                source = dictionary.entity(name).field(field_name).sources.get(stream[0])
                if source is not None and source.path:
                    paths.add(source.path)
    return paths


def identity_paths(dictionary: FieldDictionary, stream: Stream) -> set[str]:
    """The payload paths identity resolution reads in records of `stream`: the steps' `from` and `where`
    paths where it is the source, their `match` path and `yields` where it is the target; and the id."""
    paths = {"id"}
    for identity in dictionary.identity.values():
        for step in identity.steps:
            if (step.from_.system, step.from_.object_type) == stream:
                paths.add(step.from_.path)
                if step.where is not None:
                    paths.add(step.where.path)
            target = (identity.target.system, step.match.object_type or identity.target.object_type)
            if target == stream:
                paths |= {step.match.path, step.match.yields}
    return paths


def _leaves(paths: set[str]) -> list[tuple[str, ...]]:
    """The key path of each value to extract: `properties.domain` is (`properties`, `domain`); a list segment
    (`domain_names[]`) ends its path, the list read whole."""
    found: set[tuple[str, ...]] = set()
    for path in paths:
        keys: list[str] = []
        for segment in path.split("."):
            keys.append(segment.removesuffix("[]"))
            if segment.endswith("[]"):
                break
        found.add(tuple(keys))
    return sorted(found)


def _extracted(paths: set[str]) -> tuple[list[tuple[str, ...]], str]:
    leaves = _leaves(paths)
    return leaves, ", ".join(f"CAST({json_path('r.payload', keys)} AS TEXT)" for keys in leaves)


def lean_records(warehouse: Warehouse, stream: Stream, paths: set[str], ids: set[str] | None = None) -> dict[str, dict]:
    """id -> {payload (the values at `paths`), is_deleted, loaded_at (the row's stamp, as text)}: of every row,
    or of the rows `ids` names.

    The warehouse hands every row back as one JSON document (an array per row), parsed at once: a parse per
    row cost more than the query at a million records. A null at a path reads as nothing there."""
    table = CATALOG.stream_of(*stream).raw_table
    warehouse.ensure_raw_table(table)
    leaves = _leaves(paths)
    values = ", ".join(json_path("r.payload", keys) for keys in leaves)
    postgres = warehouse.backend == "postgres"
    array, rows_of = ("json_build_array", "json_agg") if postgres else ("json_array", "json_group_array")
    if ids is not None and not ids:
        return {}
    chosen, params = _chosen(ids)
    ((document,),) = warehouse.query(
        f"SELECT CAST({rows_of}({array}(CAST(r.id AS TEXT), r.is_deleted, CAST(r.loaded_at AS TEXT), {values})) "
        f"AS TEXT) FROM {validate_table(table)} AS r{chosen}",
        params,
    )
    records = {}
    for rid, deleted, loaded_at, *found in json_value(document) if document else ():
        payload = _nested((keys, value) for keys, value in zip(leaves, found, strict=True) if value is not None)
        records[rid] = {"payload": payload, "is_deleted": deleted, "loaded_at": loaded_at}
    return records


def deleted_records(warehouse: Warehouse, stream: Stream) -> dict[str, dict]:
    """id -> {payload (empty), is_deleted, loaded_at} of the stream's rows deleted at the source only: what a
    build reading the stream's marks (`Phase.marks`) needs, a few rows where the stream holds many."""
    table = CATALOG.stream_of(*stream).raw_table
    warehouse.ensure_raw_table(table)
    rows = warehouse.query(
        f"SELECT CAST(id AS TEXT), CAST(loaded_at AS TEXT) FROM {validate_table(table)} WHERE is_deleted"
    )
    return {str(rid): {"payload": {}, "is_deleted": True, "loaded_at": str(at)} for rid, at in rows}


def deleted_fingerprint(warehouse: Warehouse, stream: Stream) -> str:
    """A digest of the ids of the stream's rows deleted at the source, made in the warehouse: all a build reading
    only the stream's marks depends on (an edit of a live record leaves it as it was)."""
    table = CATALOG.stream_of(*stream).raw_table
    warehouse.ensure_raw_table(table)
    ((digest, rows),) = warehouse.query(
        f"SELECT md5(string_agg(CAST(id AS TEXT), ',' ORDER BY id)), count(*) FROM {validate_table(table)} "
        "WHERE is_deleted"
    )
    return f"{rows}:{digest or '-'}"


def moved_rows(warehouse: Warehouse, stream: Stream, kept: str, params: list) -> tuple[set[str], list[tuple]]:
    """The stream's rows against what a table remembers of them (`kept`, with `params`: a query of their
    `record_id`, the `loaded_at` it saw, and more): the ids of the rows loaded since (or new), and the
    remembered rows (all their columns) whose raw row is gone."""
    raw = validate_table(CATALOG.stream_of(*stream).raw_table)
    loaded = warehouse.query(
        f"SELECT r.id FROM {raw} AS r LEFT JOIN ({kept}) AS k ON k.record_id = r.id "
        "WHERE k.record_id IS NULL OR k.loaded_at <> CAST(r.loaded_at AS TEXT)",
        params,
    )
    gone = warehouse.query(
        f"SELECT k.* FROM ({kept}) AS k WHERE NOT EXISTS (SELECT 1 FROM {raw} AS r WHERE r.id = k.record_id)", params
    )
    return {str(row[0]) for row in loaded}, gone


def _chosen(ids: set[str] | None) -> tuple[str, list]:
    """The clause choosing the raw rows (`r`) that `ids` names (every row, without), and its parameters."""
    return (" WHERE r.id IN (SELECT unnest(?))", [sorted(ids)]) if ids is not None else ("", [])


def paths_fingerprint(warehouse: Warehouse, stream: Stream, paths: set[str]) -> str:
    """A digest of every row's id, deletion mark and values at `paths`, made in the warehouse: equal digests,
    equal inputs for whatever reads only those (identity resolution reads a few paths of each record)."""
    table = CATALOG.stream_of(*stream).raw_table
    warehouse.ensure_raw_table(table)
    values = " || '|' || ".join(
        f"coalesce(CAST({json_path('r.payload', keys)} AS TEXT), '')" for keys in _leaves(paths)
    )
    ((digest, rows),) = warehouse.query(
        "SELECT md5(string_agg(CAST(r.id AS TEXT) || '|' || CAST(r.is_deleted AS TEXT) || '|' || "
        f"{values}, chr(10) ORDER BY r.id)), count(*) FROM {validate_table(table)} AS r"
    )
    return f"{rows}:{digest or '-'}"


def _staged_records(
    warehouse: Warehouse, stream: Stream, paths: set[str], basis: str, ids: set[str] | None = None
) -> dict[str, dict] | None:
    """The stream's records with their staged reads (those of `ids` only, when given); None when a row was
    loaded again since it was staged."""
    spec = CATALOG.stream_of(*stream)
    leaves, columns = _extracted(paths)
    chosen, params = _chosen(ids)
    rows = warehouse.query(
        f"SELECT r.id, r.is_deleted, s.read, s.contract, {columns} FROM {validate_table(spec.raw_table)} AS r "
        f"LEFT JOIN {STAGED_READS} AS s ON s.stream = ? AND s.record_id = r.id AND s.loaded_at = r.loaded_at "
        f"AND s.basis = ?{chosen}",
        [spec.key, basis, *params],
    )
    if any(row[2] is None for row in rows):
        return None
    return {
        str(row[0]): {
            "payload": _rebuild(leaves, row[4:]),
            "is_deleted": bool(row[1]),
            "read": row[2],
            "contract": json_value(row[3]) if row[3] is not None else None,
        }
        for row in rows
    }


def _rebuild(leaves: list[tuple[str, ...]], texts: tuple) -> dict:
    """A payload holding only the leaves' values (SQL NULL: nothing there, so the path reads as missing); the
    values of one row are parsed together, as one JSON array."""
    present = [(keys, text) for keys, text in zip(leaves, texts, strict=True) if text is not None]
    if not present:
        return {}
    values = json_value("[" + ",".join(text for _, text in present) + "]")
    return _nested((keys, value) for (keys, _), value in zip(present, values, strict=True))


def _nested(leaves: Iterable[tuple[tuple[str, ...], Any]]) -> dict:
    """A payload from (key path, value) pairs: `(("properties", "domain"), "a.example")` is
    `{"properties": {"domain": "a.example"}}`."""
    payload: dict = {}
    for keys, value in leaves:
        parent = payload
        for key in keys[:-1]:
            parent = parent.setdefault(key, {})
        parent[keys[-1]] = value
    return payload


def read_values(
    warehouse: Warehouse, stream: Stream, basis: str, names: list[str], ids: set[str] | None = None
) -> dict[str, tuple[str, list]]:
    """id -> (loaded_at as text, the staged read's value of each field in `names` as text, None when empty or
    not staged for the row's current load), extracted in the warehouse: of every row, or of those `ids` names."""
    if ids is not None and not ids:
        return {}
    chosen, params = _chosen(ids)
    spec = CATALOG.stream_of(*stream)
    document = "CAST(s.read AS JSONB)" if warehouse.backend == "postgres" else "CAST(s.read AS JSON)"
    fields = ", ".join(f"{json_path('d.document', ['v', name], text=True)}" for name in names)
    rows = warehouse.query(
        f"SELECT d.id, d.loaded_at, {fields} FROM (SELECT r.id, CAST(r.loaded_at AS TEXT) AS loaded_at, "
        f"{document} AS document FROM {validate_table(spec.raw_table)} AS r LEFT JOIN {STAGED_READS} AS s "
        f"ON s.stream = ? AND s.record_id = r.id AND s.loaded_at = r.loaded_at AND s.basis = ?{chosen}) AS d",
        [spec.key, basis, *params],
    )
    return {str(row[0]): (row[1], list(row[2:])) for row in rows}
