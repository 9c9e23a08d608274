"""Reading a vendor payload by a dotted path, telling a key that is absent (`MISSING`) from a null value.

The field dictionary, the raw contracts, reconciliation and write-back all read payloads this one way, so a
drifted shape (a key gone) is never mistaken for "no value".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MISSING", "read_columns", "resolve_path"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def resolve_path(record: Any, path: str) -> Any:
    """The value at a dotted path: None when a step on the way is null, `MISSING` when a key is absent.

    A segment `name[]` maps the rest of the path over the list at `name` and returns a list (elements whose
    rest is missing make the whole answer `MISSING`, so a drifted shape is never read as "no value").
    """
    head, _, rest = path.partition(".")
    if record is None:
        return None
    if not isinstance(record, dict):
        return MISSING
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if key not in record:
        return MISSING
    value = record[key]
    if many:
        if value is None:
            return None
        if not isinstance(value, list):
            return MISSING
        if not rest:
            return list(value)
        found = [resolve_path(item, rest) for item in value]
        return MISSING if any(v is MISSING for v in found) else found
    return resolve_path(value, rest) if rest else value


def read_columns(records: Sequence[Any], paths: Mapping[str, str]) -> dict[str, list[Any]]:
    """`resolve_path` of every record for each column (name → path), as lists: what the contract frames read.

    A path of two plain keys (HubSpot's `properties.email`, the usual shape) reads the outer value of every
    record once for all its columns, in comprehensions rather than a call per value: on a stream of a few
    hundred thousand records this is most of what building the frame costs."""
    outer: dict[str, list[Any]] = {}
    columns: dict[str, list[Any]] = {}
    for name, path in paths.items():
        keys = path.split(".")
        if len(keys) != 2 or "[]" in path:
            columns[name] = [resolve_path(record, path) for record in records]
            continue
        first, second = keys
        if first not in outer:
            outer[first] = [
                record.get(first, MISSING) if type(record) is dict else (None if record is None else MISSING)
                for record in records
            ]
        columns[name] = [
            value.get(second, MISSING) if type(value) is dict else (value if value is None else MISSING)
            for value in outer[first]
        ]
    return columns
