"""Raw records as the vendor sent them, and what an upsert did with them: pure Python, no connection, so the
rules that decide what is stored (latest version per id, canonical payload text, no NUL) are testable alone."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class UnstorablePayload(ValueError):
    """A payload one of the backends cannot store exactly as sent; never silently altered instead."""


@dataclass(frozen=True)
class RawRow:
    """One record as the vendor sent it."""

    id: str  # vendor id as text
    version: int  # epoch ms of the record's last change per the source (fetch time when it has none)
    payload: dict  # exactly as the vendor sent it
    is_deleted: bool = False  # archived/deleted at the source: marked, never lost


@dataclass(frozen=True)
class UpsertResult:
    """What one `upsert_raw` did; the four counts always add up to the rows given.

    `stale` counts rows not applied because a newer version won: one already stored, or a later/higher
    duplicate of the same id in the same batch.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.stale


def payload_text(payload: Mapping[str, Any]) -> str:
    """Canonical JSON for a payload: sorted keys, no spaces, UTF-8 kept.

    Canonical so that equal payloads compare equal as text (DuckDB compares JSON values as strings) and an
    unchanged record is recognised as unchanged whatever key order the vendor used this time.
    """
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson cannot encode (integers beyond 64 bits): the standard library can
        return _CANONICAL_JSON.encode(payload)


def _latest_per_id(rows: Sequence[RawRow]) -> tuple[list[RawRow], int]:
    """Keeps the highest version of each id (the later one on ties); returns them sorted by id, and how
    many rows were superseded. Needed because one INSERT may not touch a key twice: PostgreSQL raises,
    and DuckDB silently keeps the *first* occurrence, which could be the older one."""
    best: dict[str, RawRow] = {}
    for row in rows:
        if not isinstance(row.id, str) or not row.id:
            raise ValueError(f"RawRow.id must be a non-empty string, got {row.id!r}")
        if not isinstance(row.version, int) or isinstance(row.version, bool):
            raise ValueError(f"RawRow.version must be an int (epoch ms), got {row.version!r} for id {row.id}")
        kept = best.get(row.id)
        if kept is None or row.version >= kept.version:
            best[row.id] = row
    return [best[key] for key in sorted(best)], len(rows) - len(best)


def _has_nul(text: str) -> bool:
    """Whether canonical JSON text holds an escaped NUL (not a literal backslash followed by "u0000")."""
    return "\\u0000" in text and _NUL_ESCAPE.search(text) is not None
