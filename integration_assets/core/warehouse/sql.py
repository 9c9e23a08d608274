"""The dialect both backends share: checked identifiers, portable column types, `?` placeholders, and values
as both drivers take them. Identifiers cannot be bound as parameters, hence the strict patterns."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

Backend = Literal["duckdb", "postgres"]

_TABLE_RE = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")
_COLUMN_RE = re.compile(r"[a-z0-9_]+")
_TYPE_RE = re.compile(
    r"(?P<type>TEXT|BIGINT|INTEGER|DOUBLE|BOOLEAN|TIMESTAMPTZ|JSON)"
    r"(?P<rest>(?: NOT NULL)?(?: DEFAULT (?:CURRENT_TIMESTAMP|TRUE|FALSE|NULL|-?\d+(?:\.\d+)?|'[^']*'))?)"
)
_PG_TYPES = {"DOUBLE": "DOUBLE PRECISION", "JSON": "JSONB"}
# Split SQL into quoted parts (kept verbatim) and the rest (where placeholders live).
_SQL_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")


class InvalidIdentifier(ValueError):
    """A table or column name that may not be put into SQL text."""


def validate_table(table: str) -> str:
    """Returns `"schema"."table"` ready for SQL, or raises: identifiers cannot be bound as parameters."""
    if not isinstance(table, str) or not _TABLE_RE.fullmatch(table):
        raise InvalidIdentifier(
            f"invalid table name {table!r}: expected 'schema.table' made of lowercase letters, digits and "
            "underscores (e.g. 'raw.crm_contacts')"
        )
    schema, name = table.split(".")
    return f'"{schema}"."{name}"'


_JSON_KEY = re.compile(r"[A-Za-z0-9_-]+")
_COLUMN_REF = re.compile(r"([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*")  # `payload`, `r.payload`


def json_path(column: str, keys: Sequence[str], *, text: bool = False) -> str:
    """SQL for the value at `keys` in a JSON column: `payload->'metadata'->'deal_id'` (JSON), its last step
    `->>` when `text` (the value as text). Chained `->`/`->>` mean the same on DuckDB's JSON and PostgreSQL's
    jsonb, so one statement serves both. The column and keys are written into the SQL text, hence checked."""
    if not keys or not _COLUMN_REF.fullmatch(column) or not all(_JSON_KEY.fullmatch(key) for key in keys):
        raise InvalidIdentifier(f"not a plain JSON path: {column!r} {list(keys)!r}")
    *head, last = keys
    return column + "".join(f"->'{key}'" for key in head) + f"{'->>' if text else '->'}'{last}'"


def _column(name: str) -> str:
    if not isinstance(name, str) or not _COLUMN_RE.fullmatch(name):
        raise InvalidIdentifier(f"invalid column name {name!r}: expected lowercase letters, digits and underscores")
    return f'"{name}"'


def column_definitions(table: str, columns: Mapping[str, str], backend: Backend) -> list[str]:
    """Portable column types in each backend's spelling."""
    definitions = []
    for name, spec in columns.items():
        match = _TYPE_RE.fullmatch(spec.strip())
        if match is None:
            raise ValueError(f"column {table}.{name}: unsupported type {spec!r}")
        base = match["type"]
        if backend == "postgres":
            base = _PG_TYPES.get(base, base)
        definitions.append(f"{_column(name)} {base}{match['rest']}")
    return definitions


def _pyformat(sql: str) -> str:
    """`?` placeholders to psycopg2's `%s`, outside quoted text only; every `%` doubled, since psycopg2
    reads `%` as a placeholder even inside string literals (`LIKE 'crm%'`)."""
    parts = _SQL_QUOTED.split(sql.replace("%", "%%"))
    for index in range(0, len(parts), 2):  # even indexes are outside quotes
        parts[index] = parts[index].replace("?", "%s")
    return "".join(parts)


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})  # passed as they are, without the Mapping check


def _value(value: Any) -> Any:
    """Dicts and lists go in as JSON text: both backends cast text into JSON columns; neither adapts dicts."""
    if type(value) in _PLAIN_TYPES:  # most values: a million-row insert called this for every one
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return value


def _none_if_missing(value: Any) -> Any:
    try:
        return None if bool(pd.isna(value)) else value
    except (TypeError, ValueError):  # a list or dict: present
        return value


def _plain(value: Any) -> Any:
    """pandas' missing values and numpy scalars as the plain Python values both drivers take."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
