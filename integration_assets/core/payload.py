"""Reading a vendor payload by a dotted path, telling a key that is absent (`MISSING`) from a null value.

The field dictionary, the raw contracts, reconciliation and write-back all read payloads this one way, so a
drifted shape (a key gone) is never mistaken for "no value".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MISSING", "path_reader", "resolve_path"]


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


def path_reader(path: str) -> Callable[[Any], Any]:
    """`resolve_path` for one path, split once: what reads a column of many records (the contract frames)."""
    if "[]" in path:
        return lambda record: resolve_path(record, path)
    keys = path.split(".")

    def read(record: Any) -> Any:
        for key in keys:
            if record is None:
                return None
            if not isinstance(record, dict):
                return MISSING
            record = record.get(key, MISSING)
            if record is MISSING:
                return MISSING
        return record

    return read
