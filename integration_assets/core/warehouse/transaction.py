"""Writes inside one open transaction: raw upserts that never roll a record back, deletion marks, rebuilt
derived tables, appends and cursors, each set-based on both backends."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import psycopg2.errors
import psycopg2.extras
import pyarrow as pa

from integration_assets.core.warehouse.rows import (
    RawRow,
    UnstorablePayload,
    UpsertResult,
    _has_nul,
    _latest_per_id,
    json_value,
    payload_text,
)
from integration_assets.core.warehouse.sql import (
    _TYPE_RE,
    Backend,
    _column,
    _plain,
    _pyformat,
    _value,
    column_definitions,
    validate_table,
)

_PG_PAGE = 5000

# What a database raises when it refuses a *value* (not the connection, not the statement): bad text for jsonb, an
# untranslatable character, a value over a limit. The sync looks for the records at fault when a chunk's write
# raises one of these, quarantines them and commits the rest; any other error still fails the step.
VALUE_REFUSED: tuple[type[BaseException], ...] = (
    UnstorablePayload,
    UnicodeError,
    psycopg2.DataError,
    psycopg2.errors.ProgramLimitExceeded,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)
_DDL_LOCK_KEY = 0x5A11_DA7A  # serialises CREATE … IF NOT EXISTS on PostgreSQL (it races otherwise)
_stage_names = itertools.count()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock` (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


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
                    tuple(json_value(v) if i in json_columns and v is not None else v for i, v in enumerate(row))
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

    def lock_table(self, table: str) -> None:
        """On PostgreSQL, waits to be the one writer of `table` (and of what goes with its chunks: the quarantine's
        items of its stream) until this transaction ends; `upsert_raw` takes the same lock (re-entrant). DuckDB's
        file lock already makes a writer the only one."""
        if self.backend == "postgres":
            self.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key(table)])

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
        definitions = column_definitions(table, columns, self.backend)
        self._ddl_lock()
        self.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.split(".")[0]}"')
        self.execute(f"DROP TABLE IF EXISTS {qualified}")
        self.execute(f"CREATE TABLE {qualified} ({', '.join(definitions)})")
        return self.insert_frame(table, columns, rows)

    def insert_frame(self, table: str, columns: Mapping[str, str], rows: pd.DataFrame) -> int:
        """Inserts a frame's rows into a table of `columns` (as `replace_table` made it), each value cast to
        its column's type; returns the count."""
        qualified = validate_table(table)
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
        name = self._register({c: list(column) for c, column in zip(columns, zip(*values, strict=True), strict=True)})
        try:
            casts = ", ".join(
                f"CAST({_column(c)} AS {_TYPE_RE.fullmatch(spec.strip())['type']})" for c, spec in columns.items()
            )
            self._connection.execute(f"INSERT INTO {qualified} ({names}) SELECT {casts} FROM {name}")
        finally:
            self._connection.unregister(name)
        return len(values)

    def _register(self, columns: Mapping[str, list[Any]]) -> str:
        """Columns of Python values as a DuckDB view, to insert from: typed Arrow arrays (ten times faster at a
        million rows than pandas object columns, which DuckDB analyses value by value), or pandas objects for a
        column Arrow cannot type (an integer beside a text)."""
        name = f"_wh_stage_{next(_stage_names)}"
        try:
            stage: Any = pa.table({column: pa.array(values) for column, values in columns.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            stage = pd.DataFrame(dict(columns), columns=list(columns), dtype=object)
            count = len(next(iter(columns.values()), []))
            # let DuckDB look at every value when it infers each object column's type, not a sample of 1000
            self._connection.execute(f"SET pandas_analyze_sample = {max(count, 1000)}")
        self._connection.register(name, stage)
        return name

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
        if not rows:
            return 0
        names = list(dict.fromkeys(key for row in rows for key in row))
        return self.append_columns(table, {name: [row.get(name) for row in rows] for name in names})

    def append_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        """`append` for rows given column by column (lists of equal length): a large batch without a dict per
        row (a canonical build's record map holds one row per raw record)."""
        qualified = validate_table(table)
        names = list(columns)
        count = len(columns[names[0]]) if names else 0
        if not count:
            return 0
        if any(len(columns[name]) != count for name in names):
            raise ValueError(f"append_columns into {table}: columns of different lengths")
        values = {name: [_value(v) for v in columns[name]] for name in names}
        sql_columns = ", ".join(_column(name) for name in names)
        if self.backend == "postgres":
            with self._connection.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    f"INSERT INTO {qualified} ({sql_columns}) VALUES %s",
                    zip(*values.values(), strict=True),
                    page_size=_PG_PAGE,
                )
            return count
        name = self._register(values)
        try:
            self._connection.execute(f"INSERT INTO {qualified} ({sql_columns}) SELECT {sql_columns} FROM {name}")
        finally:
            self._connection.unregister(name)
        return count
