"""The `Warehouse` handle: where the data lives and how each unit of work gets its connection (one per call,
under a file lock on DuckDB, or one held for a run of transactions), plus reads and table creation."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pandas as pd
import psycopg2

from integration_assets.core.warehouse.sql import Backend, _column, _none_if_missing, column_definitions, validate_table
from integration_assets.core.warehouse.tables import API_CALLS_COLUMNS, BASE_SCHEMAS, CURSORS_COLUMNS, RAW_COLUMNS
from integration_assets.core.warehouse.transaction import Transaction

_held = threading.local()


class NestedAccessError(RuntimeError):
    """A second session on the same warehouse from inside an open one, which would deadlock on the lock."""


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


POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    """Whether a WAREHOUSE_URL names PostgreSQL (`postgresql://…`, `postgres://…`); anything else is DuckDB."""
    return url.startswith(POSTGRES_URL_PREFIXES)


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
        if is_postgres_url(url):
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
        definitions = column_definitions(table, columns, self.backend)
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

    def has_table(self, table: str) -> bool:
        schema, _, name = validate_table(table).replace('"', "").rpartition(".")
        rows = self.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema or "main", name],
        )
        return bool(rows[0][0])

    def raw_version(self, table: str) -> str:
        """Changes whenever a raw table does: every applied upsert or deletion mark stamps `loaded_at`.

        The source assets report it as their data version, and the canonical layer compares it with what it
        last built from, so an unchanged input is not rebuilt."""
        rows, latest = self.query(f"SELECT count(*), max(loaded_at) FROM {validate_table(table)}")[0]
        return f"{rows}@{latest.isoformat() if latest is not None else '-'}"

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
