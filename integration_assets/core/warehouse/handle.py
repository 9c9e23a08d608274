"""The `Warehouse` handle: where the data lives and how each unit of work gets its connection (one per call,
under a file lock on DuckDB, or one held for a run of transactions), plus reads and table creation."""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pandas as pd
import psycopg2

from integration_assets.core.warehouse.rows import json_value
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


# `postgresql+psycopg2://` because the project's own dagster.yaml (SQLAlchemy) spells it so; psycopg2 (libpq)
# knows only the first two, so it is rewritten to `postgresql://` before connecting.
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg2://")
DUCKDB_URL_PREFIX = "duckdb:///"
ACCEPTED_WAREHOUSE_URLS = (
    "postgresql://user:password@host:5432/database (or postgres://…, postgresql+psycopg2://…), "
    "a DuckDB file path (/srv/warehouse.duckdb, warehouse/integration.duckdb), or duckdb:///absolute/path.duckdb"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class InvalidWarehouseUrl(ValueError):
    """WAREHOUSE_URL is not one of the accepted forms: refused rather than read as a new local DuckDB file."""


def is_postgres_url(url: str) -> bool:
    """Whether a WAREHOUSE_URL names PostgreSQL: exactly one of the accepted schemes, in lower case.

    Strict on purpose: a near miss (`POSTGRESQL://`, `postgresql:/`, a leading space) is not PostgreSQL, and
    `parse_warehouse_url` refuses it instead of taking it for a DuckDB path."""
    return url.startswith(POSTGRES_URL_PREFIXES)


def mask_url_password(url: str) -> str:
    """The URL with its password masked (user part and `password=` parameter), even when it is malformed: the
    error refusing a mistyped URL shows the value, and must not show the secret with it."""
    url = re.sub(r"(?i)(\bpassword=)[^&\s]*", r"\1***", url)
    at = url.rfind("@")
    if at < 0:
        return url
    scheme = re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*:/+", url)
    start = scheme.end() if scheme and scheme.end() <= at else 0
    user, colon, _ = url[start:at].partition(":")
    return url[:start] + user + (":***" if colon else "") + url[at:]


def parse_warehouse_url(url: str) -> tuple[Backend, str]:
    """(backend, target) for a WAREHOUSE_URL: the PostgreSQL URL as psycopg2 takes it, or the DuckDB path.

    Anything but the accepted forms raises `InvalidWarehouseUrl`, naming the value (password masked): a
    mistyped PostgreSQL URL once became a DuckDB file under the working folder, where runs "succeeded" while
    the real warehouse went stale. No side effect, so a resource can check it when it starts."""

    def refuse(why: str) -> InvalidWarehouseUrl:
        return InvalidWarehouseUrl(
            f"WAREHOUSE_URL={mask_url_password(url)!r} is refused: {why}. Accepted: {ACCEPTED_WAREHOUSE_URLS}"
        )

    if not url:
        raise refuse("it is empty")
    if url != url.strip():
        raise refuse("it has leading or trailing whitespace")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise refuse("it holds a control character (a line break or tab?)")
    if is_postgres_url(url):
        target = "postgresql://" + url.split("://", 1)[1]
        if any(c.isspace() for c in target):
            raise refuse("a URL cannot hold whitespace")
        if "://" in target.removeprefix("postgresql://"):
            raise refuse("'://' appears twice")
        try:
            urlsplit(target).port  # noqa: B018  # a port that is not a number raises here, not at the first query
        except ValueError as exc:
            raise refuse(f"not a valid URL ({exc})") from None
        return "postgres", target
    path = url
    if url.startswith(DUCKDB_URL_PREFIX):
        path = url.removeprefix("duckdb://")  # duckdb:///srv/w.duckdb -> /srv/w.duckdb
    elif scheme := _SCHEME.match(url):
        name = scheme.group()[:-1]
        known = {p.split(":")[0] for p in (*POSTGRES_URL_PREFIXES, DUCKDB_URL_PREFIX)}
        if name.lower() in known and name not in known:
            raise refuse(f"the scheme must be written in lower case ({name.lower()}://)")
        if name in known:
            raise refuse(
                f"the scheme must be followed by '//' ({name}://…)"
                if name != "duckdb"
                else "a DuckDB URL is duckdb:/// followed by an absolute path"
            )
        raise refuse(f"unknown scheme or driver {name!r} (a file path starting with 'word:' needs a leading ./)")
    if "://" in path:
        raise refuse("'://' in a file path: a mistyped URL?")
    if path in (":memory:", "/:memory:") or not path:
        raise refuse(
            "an in-memory DuckDB would vanish between calls because no connection is kept open; give a file path"
        )
    resolved = Path(path).expanduser().resolve()
    if resolved.is_dir():
        raise refuse("it names a folder; give the DuckDB file inside it")
    return "duckdb", str(resolved)


class Warehouse:
    """A handle on one warehouse; holds no connection, so it is cheap, picklable and process-safe."""

    def __init__(self, backend: Backend, target: str) -> None:
        if backend not in ("duckdb", "postgres"):
            raise ValueError(f"unknown warehouse backend {backend!r}")
        self.backend: Backend = backend
        self.target = target  # the DuckDB file path, or the PostgreSQL URL

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        """The warehouse a WAREHOUSE_URL names (see `parse_warehouse_url`: anything else is refused); the
        folder of a new DuckDB file is made."""
        backend, target = parse_warehouse_url(url)
        if backend == "duckdb":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        return cls(backend, target)

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
                    frame[name] = frame[name].map(lambda v: json_value(v) if isinstance(v, str) else v)
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
