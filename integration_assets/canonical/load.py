"""The raw records one canonical build reads, loaded as lean as the build allows.

An entity's own streams and the lookups it reads as records (deals read invoices, customers read deals) come
whole. The lookups read only by identity resolution (a payment names its client through billing's customers,
resolved against CRM companies and contacts) come as the few payload paths the dictionary's identity steps
read, extracted in the warehouse: the payments build reads about 60,000 charges but 400,000 lookup records at
a million records, and parsing their whole payloads was most of its time and memory.

The lean payload holds the value at each of those paths; where the whole payload has nothing (a key absent, or
null on the way), the lean one has no key, which identity resolution reads alike (an empty value: try the next
step). A test resolves both ways and compares.
"""

from __future__ import annotations

import orjson

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build import LOOKUPS, OWN, Stream
from integration_assets.core.warehouse import Warehouse, json_path, validate_table
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG

__all__ = ["IDENTITY_ONLY_LOOKUPS", "identity_paths", "load_raw"]

# Entities whose lookups serve identity resolution only (their builds never read a lookup record's fields).
IDENTITY_ONLY_LOOKUPS = frozenset({"invoices", "payments", "tickets"})


def load_raw(warehouse: Warehouse, entity: str, dictionary: FieldDictionary) -> ident.RawIndex:
    """Every raw record the entity's build reads: id -> {payload, is_deleted}, per stream."""
    raw: ident.RawIndex = {}
    lean = entity in IDENTITY_ONLY_LOOKUPS
    for stream in [*OWN[entity], *LOOKUPS[entity]]:
        table = CATALOG.stream_of(*stream).raw_table
        warehouse.ensure_raw_table(table)
        if lean and stream not in OWN[entity]:
            raw[stream] = _lean_records(warehouse, table, identity_paths(dictionary, stream))
        else:
            raw[stream] = {
                rid: {"payload": row["payload"], "is_deleted": bool(row["is_deleted"])}
                for rid, row in warehouse.raw_records(table).items()
            }
    return raw


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


def _lean_records(warehouse: Warehouse, table: str, paths: set[str]) -> dict[str, dict]:
    leaves = _leaves(paths)
    columns = ", ".join(f"CAST({json_path('payload', keys)} AS TEXT)" for keys in leaves)
    rows = warehouse.query(f"SELECT id, is_deleted, {columns} FROM {validate_table(table)}")
    return {str(row[0]): {"payload": _rebuild(leaves, row[2:]), "is_deleted": bool(row[1])} for row in rows}


def _rebuild(leaves: list[tuple[str, ...]], texts: tuple) -> dict:
    """A payload holding only the leaves' values (SQL NULL: nothing there, so the path reads as missing)."""
    payload: dict = {}
    for keys, text in zip(leaves, texts, strict=True):
        if text is not None:
            parent = payload
            for key in keys[:-1]:
                parent = parent.setdefault(key, {})
            parent[keys[-1]] = orjson.loads(text)
    return payload
