"""Raw records as the vendor sent them, and what an upsert did with them: pure Python, no connection, so the
rules that decide what is stored (latest version per id, canonical payload text, no NUL, a size limit) and what
is quarantined instead are testable alone."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# A record over this size (its canonical JSON, UTF-8) is quarantined instead of stored: far above any real CRM,
# billing or support record (the largest seen are ~100 kB), far below PostgreSQL's 255 MB jsonb limit, and small
# enough that one hostile record cannot make a chunk's transaction hold gigabytes.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# What `ops.quarantine` keeps of a quarantined record's raw content (escaped JSON, ASCII only): enough to see
# what is wrong with it, never a copy of a hostile megabyte.
RAW_KEEP_CHARS = 64 * 1024

# Why a record was quarantined (the review queue's `reason_code`).
UNSTORABLE_PAYLOAD = "unstorable_payload"  # NUL, invalid Unicode, a number JSON cannot hold: no backend stores it
PAYLOAD_TOO_LARGE = "payload_too_large"  # over MAX_PAYLOAD_BYTES
REFUSED_BY_DATABASE = "refused_by_database"  # passed the screening, yet the database refused the value
MALFORMED_RECORD = "malformed_record"  # no usable id or version, not a JSON object, or its row builder failed
QUARANTINE_REASONS = (UNSTORABLE_PAYLOAD, PAYLOAD_TOO_LARGE, REFUSED_BY_DATABASE, MALFORMED_RECORD)


class UnstorablePayload(ValueError):
    """A payload one of the backends cannot store exactly as sent; never silently altered instead."""


@dataclass(frozen=True)
class RawRow:
    """One record as the vendor sent it."""

    id: str  # vendor id as text
    version: int  # epoch ms of the record's last change per the source (fetch time when it has none)
    payload: dict  # exactly as the vendor sent it
    is_deleted: bool = False  # archived/deleted at the source: marked, never lost
    # Set by `build_rows` when the reader's row builder failed on this record: it is quarantined, not stored.
    problem: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A record quarantined instead of stored: why, and its raw content escaped and capped for inspection."""

    id: str  # the vendor's id; a stand-in (`<no id …>`, stable for the same content) when it had none
    version: int | None
    reason_code: str
    detail: str
    raw: str  # escaped JSON (ASCII only: NUL and control characters as \u escapes), at most RAW_KEEP_CHARS
    raw_bytes: int  # the size of the full escaped content
    truncated: bool


@dataclass(frozen=True)
class Screened:
    """One chunk's rows split into those storable as sent and those quarantined."""

    rows: list[RawRow]
    rejected: list[Rejected]


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


def json_value(text: str) -> Any:
    """A JSON column's text as Python values: orjson (several times faster on the payloads a build reads), or
    the standard library where orjson would not keep a value exactly: it reads an integer beyond 64 bits as
    a float (silently), so text holding a run of 19 digits goes to the standard library, which keeps it."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


_LONG_DIGITS = re.compile(r"[0-9]{19}")


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


def escaped_raw(value: Any) -> tuple[str, int, bool]:
    """(escaped text, full size, truncated): JSON with every non-ASCII and control character escaped (`\\u0000`,
    lone surrogates, bidirectional overrides), so any backend stores it and no terminal renders it; what JSON
    cannot hold is written by `repr`. Capped at RAW_KEEP_CHARS."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True, default=repr)
    except (RecursionError, ValueError, TypeError):
        text = ascii(value) if not isinstance(value, str) else json.dumps(value)
    return text[:RAW_KEEP_CHARS], len(text), len(text) > RAW_KEEP_CHARS


def _stand_in_id(raw: str) -> str:
    return f"<no id {hashlib.sha256(raw.encode()).hexdigest()[:16]}>"


def reject(row_or_record: RawRow | Any, reason_code: str, detail: str) -> Rejected:
    """A quarantined record, from its row (or, when no row could be built, the record as received)."""
    row = row_or_record if isinstance(row_or_record, RawRow) else None
    raw, size, truncated = escaped_raw(row.payload if row is not None else row_or_record)
    record_id = row.id if row is not None and isinstance(row.id, str) and row.id else ""
    if not record_id and isinstance(row_or_record, Mapping) and row_or_record.get("id") not in (None, ""):
        record_id = str(row_or_record["id"])
    version = row.version if row is not None and type(row.version) is int else None
    record_id = escaped_raw(record_id)[0][1:-1] if not record_id.isprintable() else record_id  # no NUL in a key
    return Rejected(
        id=record_id[:200] or _stand_in_id(raw),
        version=version,
        reason_code=reason_code,
        detail=detail[:500],
        raw=raw,
        raw_bytes=size,
        truncated=truncated,
    )


def build_rows(records: Iterable[Any], build: Callable[[Any], RawRow]) -> list[RawRow]:
    """A reader's rows, one per record: a record its row builder fails on (a malformed nested object, a date
    it cannot read) comes back as a row with `problem` set, which the sync quarantines, instead of an error
    that would stop the stream."""
    rows = []
    for record in records:
        try:
            rows.append(build(record))
        except Exception as error:  # per record, by design: any builder error quarantines that record alone
            record_id = record.get("id") if isinstance(record, Mapping) else None
            rows.append(
                RawRow(
                    id=str(record_id) if record_id not in (None, "") else "",
                    version=0,
                    payload=record if isinstance(record, dict) else {"value": record},
                    # the error's type only: its message may quote the record's values (personal data)
                    problem=f"the connector's row builder failed on it ({type(error).__name__})",
                )
            )
    return rows


def _problem(row: RawRow) -> tuple[str, str] | None:
    """(reason code, detail) when `row` cannot be stored as sent, else None."""
    if row.problem is not None:
        return MALFORMED_RECORD, row.problem
    if not isinstance(row.id, str) or not row.id:
        return MALFORMED_RECORD, f"no usable id ({type(row.id).__name__} {row.id!r:.60})"
    if "\x00" in row.id or not row.id.isprintable() or len(row.id) > 200:
        return MALFORMED_RECORD, "its id holds control characters or is over 200 characters"
    if type(row.version) is not int or not -(2**63) <= row.version < 2**63:
        return MALFORMED_RECORD, f"no usable version ({type(row.version).__name__})"
    if not isinstance(row.payload, dict):
        return MALFORMED_RECORD, f"the payload is a JSON {type(row.payload).__name__}, not an object"
    try:
        text = payload_text(row.payload)
        size = len(text.encode("utf-8"))
    except RecursionError:
        return UNSTORABLE_PAYLOAD, "nested too deep to encode"
    except UnicodeEncodeError:
        return UNSTORABLE_PAYLOAD, "holds invalid Unicode (a lone surrogate), which UTF-8 cannot encode"
    except (TypeError, ValueError) as error:
        return UNSTORABLE_PAYLOAD, f"not encodable as JSON: {error}"
    if _has_nul(text):
        return UNSTORABLE_PAYLOAD, (
            "holds the NUL character (\\u0000), which PostgreSQL jsonb cannot store; refused on every backend so "
            "DuckDB and PostgreSQL agree"
        )
    if size > MAX_PAYLOAD_BYTES:
        return PAYLOAD_TOO_LARGE, f"{size:,} bytes of JSON, over the {MAX_PAYLOAD_BYTES:,}-byte limit"
    return None


def screen(rows: Sequence[RawRow]) -> Screened:
    """Splits a chunk into the rows storable exactly as sent and the ones to quarantine, with their reasons:
    one bad record must never refuse the chunk, its cursor and everything downstream."""
    kept, rejected = [], []
    for row in rows:
        found = _problem(row)
        if found is None:
            kept.append(row)
        else:
            rejected.append(reject(row, *found))
    return Screened(kept, rejected)
