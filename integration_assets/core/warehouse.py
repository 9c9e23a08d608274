"""The warehouse: the same tables and the same write rules on DuckDB (a file, the default) and PostgreSQL.

Why it looks the way it does:

- Raw tables keep each record exactly as the vendor sent it, keyed by the vendor's id, with a `version`
  (epoch ms of the record's last change). An upsert never replaces a newer version with an older one, so
  retries, overlapping incremental windows and out-of-order pages can never roll data back.
- A stream's cursor commits in the same transaction as the rows it covers: a run killed at any point
  resumes from a cursor that never runs ahead of stored data.
- DuckDB admits one writing process per file, and a process holding a read-write connection stops every
  other process from opening the file at all. Dagster's default executor runs each step in its own
  process, so no connection is ever kept between calls: every transaction and every read takes an
  exclusive `fcntl.flock` on `<file>.lock`, opens the file, works, closes and releases. PostgreSQL gets a
  fresh connection per call too, which keeps the object safe to pickle into step processes.
- Bulk writes are set-based: a registered pandas frame on DuckDB, `execute_values` pages on PostgreSQL,
  each with one `INSERT … ON CONFLICT (id) DO UPDATE … WHERE <newer>` statement.
- Identifiers cannot be bound as parameters, so table and column names are validated against a strict
  pattern and quoted; every value is bound.

SQL given to `query`, `frame` and `Transaction.execute` uses `?` placeholders on both backends (translated
to `%s` for psycopg2, outside string literals), so callers write one dialect-neutral statement.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import duckdb
import numpy as np
import orjson
import pandas as pd
import psycopg2
import psycopg2.extras

__all__ = [
    "API_CALLS_COLUMNS",
    "CURSORS_COLUMNS",
    "RAW_COLUMNS",
    "InvalidIdentifier",
    "NestedAccessError",
    "RawRow",
    "Transaction",
    "UnstorablePayload",
    "UpsertResult",
    "Warehouse",
    "validate_table",
]

Backend = Literal["duckdb", "postgres"]

BASE_SCHEMAS = ("raw", "canonical", "ops")

# Portable column types: `ensure_table` maps them to each backend's spelling.
RAW_COLUMNS: dict[str, str] = {
    "id": "TEXT NOT NULL",
    "version": "BIGINT NOT NULL",
    "payload": "JSON NOT NULL",
    "is_deleted": "BOOLEAN NOT NULL DEFAULT FALSE",
    "loaded_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
}
CURSORS_COLUMNS: dict[str, str] = {
    "stream": "TEXT NOT NULL",
    "value": "TEXT NOT NULL",
    "updated_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
}
API_CALLS_COLUMNS: dict[str, str] = {
    "called_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
    "connector": "TEXT",
    "system": "TEXT",
    "method": "TEXT",
    "endpoint": "TEXT",
    "status": "INTEGER",
    "latency_ms": "DOUBLE",
    "request_bytes": "BIGINT",
    "response_bytes": "BIGINT",
    "attempt": "INTEGER",
    "error_category": "TEXT",
    "request_id": "TEXT",
}

_TABLE_RE = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")
_COLUMN_RE = re.compile(r"[a-z0-9_]+")
_TYPE_RE = re.compile(
    r"(?P<type>TEXT|BIGINT|INTEGER|DOUBLE|BOOLEAN|TIMESTAMPTZ|JSON)"
    r"(?P<rest>(?: NOT NULL)?(?: DEFAULT (?:CURRENT_TIMESTAMP|TRUE|FALSE|NULL|-?\d+(?:\.\d+)?|'[^']*'))?)"
)
_PG_TYPES = {"DOUBLE": "DOUBLE PRECISION", "JSON": "JSONB"}
# Split SQL into quoted parts (kept verbatim) and the rest (where placeholders live).
_SQL_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_PG_PAGE = 5000
_DDL_LOCK_KEY = 0x5A11_DA7A  # serialises CREATE … IF NOT EXISTS on PostgreSQL (it races otherwise)

_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_stage_names = itertools.count()
_held = threading.local()


class InvalidIdentifier(ValueError):
    """A table or column name that may not be put into SQL text."""


class UnstorablePayload(ValueError):
    """A payload one of the backends cannot store exactly as sent; never silently altered instead."""


class NestedAccessError(RuntimeError):
    """A second session on the same warehouse from inside an open one, which would deadlock on the lock."""


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


def validate_table(table: str) -> str:
    """Returns `"schema"."table"` ready for SQL, or raises: identifiers cannot be bound as parameters."""
    if not isinstance(table, str) or not _TABLE_RE.fullmatch(table):
        raise InvalidIdentifier(
            f"invalid table name {table!r}: expected 'schema.table' made of lowercase letters, digits and "
            "underscores (e.g. 'raw.crm_contacts')"
        )
    schema, name = table.split(".")
    return f'"{schema}"."{name}"'


def _column(name: str) -> str:
    if not isinstance(name, str) or not _COLUMN_RE.fullmatch(name):
        raise InvalidIdentifier(f"invalid column name {name!r}: expected lowercase letters, digits and underscores")
    return f'"{name}"'


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


def _pyformat(sql: str) -> str:
    """`?` placeholders to psycopg2's `%s`, outside quoted text only; every `%` doubled, since psycopg2
    reads `%` as a placeholder even inside string literals (`LIKE 'crm%'`)."""
    parts = _SQL_QUOTED.split(sql.replace("%", "%%"))
    for index in range(0, len(parts), 2):  # even indexes are outside quotes
        parts[index] = parts[index].replace("?", "%s")
    return "".join(parts)


@contextmanager
def _exclusive(key: str) -> Iterator[None]:
    held: set[str] = _held.__dict__.setdefault("keys", set())
    if key in held:
        raise NestedAccessError(
            "this thread already has a session open on the warehouse; inside `with warehouse.transaction() "
            "as tx:` read with `tx.execute(...)` instead of calling the warehouse again"
        )
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock` (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _value(value: Any) -> Any:
    """Dicts and lists go in as JSON text: both backends cast text into JSON columns; neither adapts dicts."""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return value


def _column_definitions(table: str, columns: Mapping[str, str], backend: Backend) -> list[str]:
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


class Warehouse:
    """A handle on one warehouse; holds no connection, so it is cheap, picklable and process-safe."""

    def __init__(self, backend: Backend, target: str) -> None:
        if backend not in ("duckdb", "postgres"):
            raise ValueError(f"unknown warehouse backend {backend!r}")
        self.backend: Backend = backend
        self.target = target  # the DuckDB file path, or the PostgreSQL URL

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        """`postgresql://…` or `postgres://…` opens PostgreSQL; anything else is a DuckDB file path."""
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgres", url)
        if url.startswith("duckdb:///"):
            url = url.removeprefix("duckdb://")
        if not url or url == ":memory:":
            raise ValueError(
                "WAREHOUSE_URL must be a DuckDB file path or a postgresql:// URL; an in-memory DuckDB would "
                "vanish between calls because no connection is kept open"
            )
        path = Path(url).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls("duckdb", str(path))

    def __repr__(self) -> str:
        return f"Warehouse({self.backend!r}, {_redacted(self.target)!r})"

    # sessions ---------------------------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """One connection for one unit of work: the held one (see `held`), or a new one for this work only."""
        key = f"{self.backend}:{self.target}"
        with _exclusive(key):
            pinned = _held.__dict__.get("pinned", {}).get(key)
            if pinned is not None:
                yield pinned
                return
            with self._connect() as connection:
                yield connection

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """A new connection; on DuckDB under the inter-process file lock, released when it closes."""
        if self.backend == "postgres":
            connection = psycopg2.connect(self.target, connect_timeout=10)
            try:
                yield connection
            finally:
                connection.close()
            return
        lock_fd = os.open(self.target + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            connection = duckdb.connect(self.target)
            try:
                yield connection
            finally:
                connection.close()
        finally:
            os.close(lock_fd)  # closing the descriptor releases the flock

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keeps one connection for a run of transactions on this thread (a sync's chunks).

        Closing a DuckDB connection checkpoints the file, a cost that grows with the tables: one connection
        per chunk made a large backfill slow down as it went. On DuckDB the file lock is held meanwhile, so
        other processes wait for their turn to write, as they would for DuckDB's single writer anyway.
        """
        key = f"{self.backend}:{self.target}"
        pinned: dict[str, Any] = _held.__dict__.setdefault("pinned", {})
        if key in pinned:
            yield
            return
        with self._connect() as connection:
            if self.backend == "duckdb":
                # Checkpoint every 256 MB of WAL instead of DuckDB's 16 MB: each checkpoint rewrites the file, a
                # cost that grows with the tables; 256 MB still bounds what the connection holds in memory.
                connection.execute("SET checkpoint_threshold = '256MB'")
            pinned[key] = connection
            try:
                yield
            finally:
                del pinned[key]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All or nothing: commits when the block ends, rolls back (and re-raises) when it raises."""
        with self._session() as connection:
            if self.backend == "postgres":
                connection.autocommit = False  # a held connection may have answered a query before
                with connection:  # psycopg2: commit on success, rollback on error
                    yield Transaction(self.backend, connection)
                return
            connection.execute("BEGIN TRANSACTION")
            try:
                yield Transaction(self.backend, connection)
            except BaseException:
                with suppress(duckdb.Error):  # closing the connection rolls back anyway
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # schema -----------------------------------------------------------------------------------------------

    def ensure_table(self, table: str, columns: Mapping[str, str], primary_key: Sequence[str] = ()) -> None:
        """Creates `table` (and its schema) if missing. Column types are portable names (TEXT, BIGINT,
        INTEGER, DOUBLE, BOOLEAN, TIMESTAMPTZ, JSON, optionally `NOT NULL` and a simple `DEFAULT`), mapped
        to each backend's spelling, so every ops table is declared once for both. Never alters an existing
        table."""
        qualified = validate_table(table)
        definitions = _column_definitions(table, columns, self.backend)
        if primary_key:
            definitions.append(f"PRIMARY KEY ({', '.join(_column(key) for key in primary_key)})")
        with self.transaction() as tx:
            tx._ddl_lock()
            tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.split(".")[0]}"')
            tx.execute(f"CREATE TABLE IF NOT EXISTS {qualified} ({', '.join(definitions)})")

    def ensure_ops_tables(self) -> None:
        """Schemas raw, canonical and ops, and the ops tables every sync writes (call log and cursors)."""
        with self.transaction() as tx:
            tx._ddl_lock()
            for schema in BASE_SCHEMAS:
                tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.ensure_table("ops.api_calls", API_CALLS_COLUMNS)
        self.ensure_table("ops.cursors", CURSORS_COLUMNS, primary_key=["stream"])

    def ensure_raw_table(self, table: str) -> None:
        """A raw table: vendor id as primary key, version, the payload as JSON (JSONB on PostgreSQL)."""
        self.ensure_table(table, RAW_COLUMNS, primary_key=["id"])

    # reads ------------------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Rows of one statement (`?` placeholders). JSON columns come back parsed on both backends."""
        with self._session() as connection:
            if self.backend == "postgres":
                connection.autocommit = True
            return Transaction(self.backend, connection).execute(sql, params)

    def frame(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """`query` as a DataFrame with the statement's column names."""
        with self._session() as connection:
            if self.backend == "postgres":
                connection.autocommit = True
            if self.backend == "duckdb":  # DuckDB builds the frame column-wise, far faster than tuples
                result = connection.execute(sql, list(params) if params is not None else None)
                json_columns = [column[0] for column in result.description if str(column[1]) == "JSON"]
                frame = result.df()
                for name in json_columns:
                    frame[name] = frame[name].map(lambda v: json.loads(v) if isinstance(v, str) else v)
                return frame
            tx = Transaction(self.backend, connection)
            rows = tx.execute(sql, params)
            return pd.DataFrame.from_records(rows, columns=tx.last_columns)

    def records(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """`frame` as one dict per row, with pandas' missing values (NaN, NaT, NA) as None."""
        return [{k: _none_if_missing(v) for k, v in row.items()} for row in self.frame(sql, params).to_dict("records")]

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {validate_table(table)}")[0][0]

    def cursor(self, stream: str) -> str | None:
        """The committed cursor of a stream (asset key), or None before its first successful chunk."""
        rows = self.query('SELECT "value" FROM "ops"."cursors" WHERE "stream" = ?', [stream])
        return rows[0][0] if rows else None

    def raw_records(self, table: str) -> dict[str, dict]:
        """Every row of a raw table as id → {version, payload (parsed), is_deleted}: what tests compare
        with the sandbox's own records."""
        rows = self.query(f"SELECT id, version, payload, is_deleted FROM {validate_table(table)}")
        return {
            record_id: {"version": version, "payload": payload, "is_deleted": is_deleted}
            for record_id, version, payload, is_deleted in rows
        }


class Transaction:
    """Work inside one open transaction; obtained only from `Warehouse.transaction()`."""

    def __init__(self, backend: Backend, connection: Any) -> None:
        self.backend = backend
        self._connection = connection
        self.last_columns: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Runs one statement (`?` placeholders, values always bound) and returns its rows, if any."""
        if self.backend == "duckdb":
            result = self._connection.execute(sql, list(params) if params is not None else None)
            description = result.description
            rows = result.fetchall() if description else []
            if not description:
                self.last_columns = []
                return []
            self.last_columns = [column[0] for column in description]
            json_columns = [i for i, column in enumerate(description) if str(column[1]) == "JSON"]
            if json_columns:  # DuckDB hands JSON back as text; psycopg2 parses it: agree on parsed
                rows = [
                    tuple(json.loads(v) if i in json_columns and v is not None else v for i, v in enumerate(row))
                    for row in rows
                ]
            return rows
        with self._connection.cursor() as cur:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(_pyformat(sql), list(params))
            if cur.description is None:
                self.last_columns = []
                return []
            self.last_columns = [column.name for column in cur.description]
            return cur.fetchall()

    def _ddl_lock(self) -> None:
        if self.backend == "postgres":
            self.execute("SELECT pg_advisory_xact_lock(?)", [_DDL_LOCK_KEY])

    def upsert_raw(self, table: str, rows: Sequence[RawRow], run_id: str) -> UpsertResult:
        """Writes rows by primary key, never replacing a newer stored version with an older one.

        Per id (after keeping the latest duplicate within `rows`): new → inserted; older than stored →
        stale, untouched; not older and with the same payload and deletion mark → unchanged, untouched
        (a re-listing that fetched nothing new is no update); otherwise → updated.
        """
        qualified = validate_table(table)
        latest, superseded = _latest_per_id(rows)
        if not latest:
            return UpsertResult(stale=superseded)
        texts = [payload_text(row.payload) for row in latest]
        unstorable = [row.id for row, text in zip(latest, texts, strict=True) if _has_nul(text)]
        if unstorable:
            raise UnstorablePayload(
                f"{table}: payloads of ids {unstorable[:10]} contain the NUL character (\\u0000), which "
                "PostgreSQL jsonb cannot store; refused on every backend so DuckDB and PostgreSQL agree"
            )
        if self.backend == "duckdb":
            result = self._upsert_duckdb(qualified, latest, texts, run_id)
        else:
            result = self._upsert_postgres(table, qualified, latest, texts, run_id)
        return UpsertResult(result.inserted, result.updated, result.unchanged, result.stale + superseded)

    _SET_NEWER = (
        "ON CONFLICT (id) DO UPDATE SET version = excluded.version, payload = excluded.payload, "
        "is_deleted = excluded.is_deleted, loaded_at = excluded.loaded_at, run_id = excluded.run_id "
        "WHERE excluded.version >= t.version AND ("
        "excluded.payload IS DISTINCT FROM t.payload OR excluded.is_deleted IS DISTINCT FROM t.is_deleted)"
    )

    def _upsert_duckdb(self, qualified: str, latest: list[RawRow], texts: list[str], run_id: str) -> UpsertResult:
        stage = pd.DataFrame(
            {
                "id": [row.id for row in latest],
                "version": np.fromiter((row.version for row in latest), dtype=np.int64, count=len(latest)),
                "payload": texts,
                "is_deleted": np.fromiter((bool(row.is_deleted) for row in latest), dtype=bool),
            }
        )
        name = f"_wh_stage_{next(_stage_names)}"
        con = self._connection
        con.register(name, stage)
        try:
            # Classify against what is stored before writing; the file lock makes this exact.
            inserted, stale, unchanged = con.execute(
                f"""SELECT count(*) FILTER (WHERE t.id IS NULL),
                           count(*) FILTER (WHERE s.version < t.version),
                           count(*) FILTER (WHERE s.version >= t.version AND t.payload::VARCHAR = s.payload
                                                 AND t.is_deleted = s.is_deleted)
                    FROM {name} AS s LEFT JOIN {qualified} AS t ON t.id = s.id"""
            ).fetchone()
            con.execute(
                f"INSERT INTO {qualified} AS t (id, version, payload, is_deleted, loaded_at, run_id) "
                f"SELECT id, version, payload::JSON, is_deleted, now(), ? FROM {name} " + self._SET_NEWER,
                [run_id],
            )
        finally:
            con.unregister(name)
        return UpsertResult(inserted, len(latest) - inserted - stale - unchanged, unchanged, stale)

    def _upsert_postgres(
        self, table: str, qualified: str, latest: list[RawRow], texts: list[str], run_id: str
    ) -> UpsertResult:
        with self._connection.cursor() as cur:
            # One writer per table at a time: exact counts, and no row-lock deadlocks between overlapping
            # batches of concurrent runs. Held until this transaction ends.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(table)])
            written = psycopg2.extras.execute_values(
                cur,
                f"INSERT INTO {qualified} AS t (id, version, payload, is_deleted, loaded_at, run_id) "
                f"VALUES %s {self._SET_NEWER} RETURNING t.id, (t.xmax = 0)",
                [
                    (row.id, row.version, text, bool(row.is_deleted), run_id)
                    for row, text in zip(latest, texts, strict=True)
                ],
                template="(%s, %s, %s::jsonb, %s, now(), %s)",
                page_size=_PG_PAGE,
                fetch=True,
            )
            inserted = sum(1 for _, is_new in written if is_new)
            updated = len(written) - inserted
            untouched = {row.id: row.version for row in latest}
            for record_id, _ in written:
                del untouched[record_id]
            stale = 0
            if untouched:  # untouched rows are stale or unchanged: the stored version tells which
                cur.execute(f"SELECT id, version FROM {qualified} WHERE id = ANY(%s)", [list(untouched)])
                stale = sum(1 for record_id, stored in cur.fetchall() if untouched[record_id] < stored)
        return UpsertResult(inserted, updated, len(untouched) - stale, stale)

    def mark_missing_deleted(self, table: str, listed_ids: set[str], run_id: str) -> int:
        """After a complete listing: rows it did not list were deleted at the source. Marked, never dropped."""
        qualified = validate_table(table)
        stage = pd.DataFrame({"id": sorted(listed_ids)}, dtype=object)
        update = (
            # The version stays: the record's next real version, whatever our clock says, must win over the mark.
            f"UPDATE {qualified} AS t SET is_deleted = TRUE, loaded_at = now(), run_id = ? "
            "WHERE NOT t.is_deleted AND NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE s.id = t.id)"
        )
        if self.backend == "duckdb":
            name = f"_wh_stage_{next(_stage_names)}"
            self._connection.register(name, stage)
            try:
                before = self._connection.execute(f"SELECT count(*) FROM {qualified} WHERE is_deleted").fetchone()[0]
                self._connection.execute(update.format(stage=name), [run_id])
                after = self._connection.execute(f"SELECT count(*) FROM {qualified} WHERE is_deleted").fetchone()[0]
            finally:
                self._connection.unregister(name)
            return after - before
        with self._connection.cursor() as cur:
            cur.execute("CREATE TEMP TABLE _wh_listed (id TEXT PRIMARY KEY) ON COMMIT DROP")
            psycopg2.extras.execute_values(
                cur, "INSERT INTO _wh_listed (id) VALUES %s", [(i,) for i in listed_ids], page_size=_PG_PAGE
            )
            cur.execute(_pyformat(update.format(stage="_wh_listed")), [run_id])
            return cur.rowcount

    def replace_table(self, table: str, columns: Mapping[str, str], rows: pd.DataFrame) -> int:
        """Rebuilds a derived table (canonical.*) from scratch with exactly `rows`: readers of the committed
        transaction see the old table or the new one, never half of each."""
        qualified = validate_table(table)
        definitions = _column_definitions(table, columns, self.backend)
        self._ddl_lock()
        self.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.split(".")[0]}"')
        self.execute(f"DROP TABLE IF EXISTS {qualified}")
        self.execute(f"CREATE TABLE {qualified} ({', '.join(definitions)})")
        frame = rows[list(columns)]
        json_columns = [name for name, spec in columns.items() if spec.split()[0] == "JSON"]
        values = [
            [_value(v) if name in json_columns else _plain(v) for name, v in zip(columns, row, strict=True)]
            for row in frame.itertuples(index=False, name=None)
        ]
        if not values:
            return 0
        names = ", ".join(_column(name) for name in columns)
        if self.backend == "postgres":
            with self._connection.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur, f"INSERT INTO {qualified} ({names}) VALUES %s", values, page_size=_PG_PAGE
                )
            return len(values)
        stage = pd.DataFrame(values, columns=list(columns), dtype=object)
        name = f"_wh_stage_{next(_stage_names)}"
        self._connection.execute(f"SET pandas_analyze_sample = {max(len(values), 1000)}")
        self._connection.register(name, stage)
        try:
            casts = ", ".join(
                f"CAST({_column(c)} AS {_TYPE_RE.fullmatch(spec.strip())['type']})" for c, spec in columns.items()
            )
            self._connection.execute(f"INSERT INTO {qualified} ({names}) SELECT {casts} FROM {name}")
        finally:
            self._connection.unregister(name)
        return len(values)

    def set_cursor(self, stream: str, value: str, run_id: str) -> None:
        """Records how far a stream has been read; commits only with the rows it covers."""
        self.execute(
            'INSERT INTO "ops"."cursors" AS c (stream, value, updated_at, run_id) '
            "VALUES (?, ?, CURRENT_TIMESTAMP, ?) ON CONFLICT (stream) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
            [stream, value, run_id],
        )

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Inserts dict rows (columns = the union of their keys, missing ones NULL); returns the count.

        Dict and list values are stored as JSON text. Set-based on both backends: DuckDB's executemany costs
        about half a millisecond per row.
        """
        qualified = validate_table(table)
        if not rows:
            return 0
        names = list(dict.fromkeys(key for row in rows for key in row))
        columns = ", ".join(_column(name) for name in names)
        values = [[_value(row.get(name)) for name in names] for row in rows]
        if self.backend == "postgres":
            with self._connection.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur, f"INSERT INTO {qualified} ({columns}) VALUES %s", values, page_size=_PG_PAGE
                )
            return len(rows)
        stage = pd.DataFrame(values, columns=names, dtype=object)
        name = f"_wh_stage_{next(_stage_names)}"
        con = self._connection
        # Let DuckDB look at every value when it infers each object column's type, not a sample of 1000.
        con.execute(f"SET pandas_analyze_sample = {max(len(rows), 1000)}")
        con.register(name, stage)
        try:
            con.execute(f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {name}")
        finally:
            con.unregister(name)
        return len(rows)
