"""Which records are associated with which: from stored association lists and `associatedcompanyid`."""

from __future__ import annotations

from collections.abc import Iterable

from integration_sandbox.store import Record, VersionedCollection
from integration_sandbox.vendors.hubspot.definitions import ASSOCIATION_TYPES, OBJECT_TYPES, PLURAL, SINGULAR


class AssociationGraph:
    """(from type, from id, to type) → {to id: type ids}, built again when any collection has changed."""

    def __init__(self, collections: dict[str, VersionedCollection]) -> None:
        self._collections = collections
        self._built: tuple[tuple[int, ...], dict] | None = None

    def links(self, object_type: str, record_id: str, to_type: str) -> list[tuple[str, list[int]]]:
        """Live records of `to_type` associated with a record, by numeric id, with their type ids."""
        found = self._graph().get((object_type, record_id, to_type), {})
        target = self._collections[to_type]
        live = [(i, sorted(t)) for i, t in found.items() if (r := target.get(i)) is not None and not r.get("archived")]
        return sorted(live, key=lambda pair: int(pair[0]))

    def _graph(self) -> dict[tuple[str, str, str], dict[str, set[int]]]:
        version = tuple(self._collections[t].version for t in OBJECT_TYPES)
        if self._built is not None and self._built[0] == version:
            return self._built[1]
        graph: dict[tuple[str, str, str], dict[str, set[int]]] = {}

        def link(a_type: str, a_id: str, b_type: str, b_id: str, primary: bool) -> None:
            for (x_type, x_id), (y_type, y_id) in (
                ((a_type, a_id), (b_type, b_id)),
                ((b_type, b_id), (a_type, a_id)),
            ):
                unlabeled, primary_id = ASSOCIATION_TYPES[(x_type, y_type)]
                types = graph.setdefault((x_type, x_id, y_type), {}).setdefault(y_id, set())
                types.add(unlabeled)
                if primary and primary_id:
                    types.add(primary_id)

        for object_type in OBJECT_TYPES:
            for record in self._collections[object_type]:
                for to_type, entries in stored_associations(record):
                    for to_id, label in entries:
                        if (object_type, to_type) in ASSOCIATION_TYPES:
                            link(object_type, record["id"], to_type, to_id, not label.endswith("_unlabeled"))
                company = (record.get("properties") or {}).get("associatedcompanyid")
                if object_type == "contacts" and company:
                    link("contacts", record["id"], "companies", str(company), True)
        self._built = (version, graph)
        return graph


def type_label(from_type: str, to_type: str, type_id: int) -> str:
    name = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"
    unlabeled, primary = ASSOCIATION_TYPES[(from_type, to_type)]
    return f"{name}_unlabeled" if primary and type_id == unlabeled else name


def stored_associations(record: Record) -> Iterable[tuple[str, list[tuple[str, str]]]]:
    """A record's own `associations` (v3 shape, or plain id lists) as (to type, [(id, type label)])."""
    stored = record.get("associations")
    if not isinstance(stored, dict):
        return
    for key, value in stored.items():
        to_type = PLURAL.get(str(key).lower())
        if to_type is None:
            continue
        items = value.get("results", []) if isinstance(value, dict) else value if isinstance(value, list) else []
        entries = []
        for item in items:
            if isinstance(item, dict) and item.get("id") is not None:
                entries.append((str(item["id"]), str(item.get("type") or "")))
            elif isinstance(item, str | int):
                entries.append((str(item), ""))
        yield to_type, entries
