"""The warehouse on real DuckDB files and a real PostgreSQL server: the same rules on both."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from integration_assets.core.warehouse import (
    InvalidIdentifier,
    NestedAccessError,
    RawRow,
    UnstorablePayload,
    UpsertResult,
    Warehouse,
)
from integration_assets_tests.testing import fresh_postgres_database

TABLE = "raw.crm_contacts"
CONCURRENT = "raw.support_tickets"  # created by the racing processes themselves


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own for this test session, so parallel runs and leftovers never collide."""
    with fresh_postgres_database() as url:
        yield url


def _fresh_postgres(url: str) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS raw, canonical, ops CASCADE")
    connection.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb":
        wh = Warehouse.from_url(str(tmp_path / "nested" / "warehouse.duckdb"))
    else:
        url = request.getfixturevalue("pg_url")
        _fresh_postgres(url)
        wh = Warehouse.from_url(url)
    assert wh.backend == request.param
    wh.ensure_ops_tables()
    wh.ensure_raw_table(TABLE)
    return wh


def upsert(wh: Warehouse, rows: list[RawRow], run_id: str = "run-1", table: str = TABLE) -> UpsertResult:
    with wh.transaction() as tx:
        return tx.upsert_raw(table, rows, run_id)


def test_counts_and_an_older_version_never_overwrites_a_newer_one(warehouse: Warehouse) -> None:
    first = upsert(warehouse, [RawRow("1", 100, {"n": 1}), RawRow("2", 100, {"n": 2})])
    assert first == UpsertResult(inserted=2, updated=0, unchanged=0, stale=0)

    second = upsert(
        warehouse,
        [
            RawRow("1", 100, {"n": 1}),  # same version, same payload
            RawRow("2", 200, {"n": 22}),  # newer
            RawRow("3", 100, {"n": 3}),  # new
        ],
        run_id="run-2",
    )
    assert second == UpsertResult(inserted=1, updated=1, unchanged=1, stale=0)

    third = upsert(warehouse, [RawRow("2", 150, {"n": "older"}), RawRow("1", 99, {"n": "older"})], "run-3")
    assert third == UpsertResult(inserted=0, updated=0, unchanged=0, stale=2)

    records = warehouse.raw_records(TABLE)
    assert records == {
        "1": {"version": 100, "payload": {"n": 1}, "is_deleted": False},
        "2": {"version": 200, "payload": {"n": 22}, "is_deleted": False},
        "3": {"version": 100, "payload": {"n": 3}, "is_deleted": False},
    }
    # stale and unchanged rows were not touched at all: they keep the run that wrote them
    assert dict(warehouse.query(f"SELECT id, run_id FROM {TABLE}")) == {
        "1": "run-1",
        "2": "run-2",
        "3": "run-2",
    }

    # same version with other content is applied (the source says it is current); key order is no change
    fourth = upsert(warehouse, [RawRow("3", 100, {"n": 33}), RawRow("2", 200, {"n": 22})], "run-4")
    assert fourth == UpsertResult(inserted=0, updated=1, unchanged=1, stale=0)
    assert warehouse.raw_records(TABLE)["3"]["payload"] == {"n": 33}
    assert upsert(warehouse, []) == UpsertResult()


def test_duplicates_inside_one_batch_keep_the_highest_version(warehouse: Warehouse) -> None:
    result = upsert(
        warehouse,
        [
            RawRow("a", 3, {"v": "three"}),
            RawRow("a", 5, {"v": "five"}),
            RawRow("a", 4, {"v": "four"}),
            RawRow("b", 7, {"v": "first"}),
            RawRow("b", 7, {"v": "last"}),  # tie: the later one wins
        ],
    )
    assert result == UpsertResult(inserted=2, updated=0, unchanged=0, stale=3)
    assert result.total == 5
    records = warehouse.raw_records(TABLE)
    assert records["a"] == {"version": 5, "payload": {"v": "five"}, "is_deleted": False}
    assert records["b"]["payload"] == {"v": "last"}


def test_deleted_records_are_marked_never_lost(warehouse: Warehouse) -> None:
    upsert(warehouse, [RawRow("1", 10, {"email": "a@x.test"}), RawRow("2", 10, {"email": "b@x.test"})])
    archived = {"email": "a@x.test", "archived": True}
    result = upsert(warehouse, [RawRow("1", 20, archived, is_deleted=True)])
    assert result == UpsertResult(inserted=0, updated=1, unchanged=0, stale=0)
    # a late, older copy that still looks alive does not resurrect it
    assert upsert(warehouse, [RawRow("1", 15, {"email": "a@x.test"})]).stale == 1
    # marking alone (same version, same payload) is a change
    assert upsert(warehouse, [RawRow("2", 10, {"email": "b@x.test"}, is_deleted=True)]).updated == 1

    records = warehouse.raw_records(TABLE)
    assert records["1"] == {"version": 20, "payload": archived, "is_deleted": True}
    assert records["2"]["is_deleted"] is True
    assert warehouse.query(f"SELECT count(*) FROM {TABLE} WHERE is_deleted") == [(2,)]


def test_cursor_commits_with_the_rows_it_covers(warehouse: Warehouse) -> None:
    assert warehouse.cursor("crm/contacts") is None
    with warehouse.transaction() as tx:
        tx.upsert_raw(TABLE, [RawRow("1", 1, {})], "run-1")
        tx.set_cursor("crm/contacts", "1700000000000", "run-1")
    assert warehouse.cursor("crm/contacts") == "1700000000000"
    with warehouse.transaction() as tx:
        tx.upsert_raw(TABLE, [RawRow("2", 2, {})], "run-2")
        tx.set_cursor("crm/contacts", "1700000000999", "run-2")
    assert warehouse.cursor("crm/contacts") == "1700000000999"
    assert warehouse.cursor("billing/customers") is None
    assert warehouse.query("SELECT stream, run_id FROM ops.cursors") == [("crm/contacts", "run-2")]


def test_a_failing_transaction_leaves_neither_rows_nor_cursor(warehouse: Warehouse) -> None:
    with warehouse.transaction() as tx:
        tx.upsert_raw(TABLE, [RawRow("1", 1, {"kept": True})], "run-1")
        tx.set_cursor("crm/contacts", "cursor-1", "run-1")

    with pytest.raises(RuntimeError, match="crash"), warehouse.transaction() as tx:
        assert tx.upsert_raw(TABLE, [RawRow("1", 2, {"kept": False}), RawRow("2", 1, {})], "run-2").total == 2
        tx.set_cursor("crm/contacts", "cursor-2", "run-2")
        tx.append("ops.api_calls", [{"run_id": "run-2", "connector": "crm"}])
        raise RuntimeError("crash between chunk and commit")

    assert warehouse.cursor("crm/contacts") == "cursor-1"
    assert warehouse.raw_records(TABLE) == {"1": {"version": 1, "payload": {"kept": True}, "is_deleted": False}}
    assert warehouse.query("SELECT count(*) FROM ops.api_calls") == [(0,)]
    # the warehouse is usable afterwards (lock released, connection closed)
    assert upsert(warehouse, [RawRow("2", 1, {})]).inserted == 1


def test_append_to_the_call_log(warehouse: Warehouse) -> None:
    called_at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    base = {
        "called_at": called_at,
        "run_id": "run-1",
        "connector": "crm_contacts",
        "system": "crm",
        "method": "GET",
        "endpoint": "GET /crm/v3/objects/{object_type}",
        "latency_ms": 12.5,
        "request_bytes": 0,
        "response_bytes": 20_480,
    }
    rows = [
        {**base, "status": 200, "attempt": 1, "error_category": None, "request_id": "req-1"},
        {**base, "status": None, "attempt": 2, "error_category": "transient", "request_id": None},
    ]
    with warehouse.transaction() as tx:
        assert tx.append("ops.api_calls", rows) == 2
        assert tx.append("ops.api_calls", []) == 0
    stored = warehouse.query(
        "SELECT called_at, status, latency_ms, response_bytes, attempt, error_category, request_id "
        "FROM ops.api_calls ORDER BY attempt"
    )
    assert stored == [
        (called_at, 200, 12.5, 20_480, 1, None, "req-1"),
        (called_at, None, 12.5, 20_480, 2, "transient", None),
    ]
    frame = warehouse.frame("SELECT * FROM ops.api_calls WHERE system = ? AND endpoint LIKE 'GET /crm%'", ["crm"])
    assert sorted(frame["attempt"]) == [1, 2]
    assert set(frame.columns) >= {"called_at", "connector", "latency_ms", "request_id"}


def test_append_columns_stores_a_batch_given_column_by_column(warehouse: Warehouse) -> None:
    warehouse.ensure_table("ops.columns_drill", {"id": "TEXT NOT NULL", "n": "BIGINT", "doc": "JSON"})
    columns = {"id": ["a", "b", "c"], "n": [1, None, 2**40], "doc": [{"k": [1, 2]}, None, ["x"]]}
    with warehouse.transaction() as tx:
        assert tx.append_columns("ops.columns_drill", columns) == 3
        assert tx.append_columns("ops.columns_drill", {"id": [], "n": []}) == 0
        with pytest.raises(ValueError, match="different lengths"):
            tx.append_columns("ops.columns_drill", {"id": ["d"], "n": []})
    stored = warehouse.query("SELECT id, n, doc FROM ops.columns_drill ORDER BY id")
    assert stored == [("a", 1, {"k": [1, 2]}), ("b", None, None), ("c", 2**40, ["x"])]


def test_raw_records_round_trip_nested_payloads(warehouse: Warehouse) -> None:
    payloads = {
        "unicode": {"name": "Zoë Ørsted 東京 😀", "note": 'quote " backslash \\ newline \n tab \t'},
        "nulls": {"phone": None, "address": {"line2": None}, "tags": [None]},
        "nested": {
            "properties": {"lifecyclestage": "customer", "amount": "1200.50"},
            "associations": {"companies": {"results": [{"id": "9", "type": "contact_to_company"}]}},
            "matrix": [[1, 2], [], [[3.25, -4]], [{"deep": [True, False]}]],
            "big": 2**62,
            "empty": {},
        },
        "literal_backslash_u": {"text": "\\u0000 is not a NUL here"},
    }
    upsert(warehouse, [RawRow(key, 1, payload) for key, payload in payloads.items()])
    records = warehouse.raw_records(TABLE)
    assert {key: record["payload"] for key, record in records.items()} == payloads
    assert warehouse.query(f"SELECT payload FROM {TABLE} WHERE id = ?", ["nested"]) == [(payloads["nested"],)]
    # the same payloads again, keys in another order: recognised as unchanged
    again = [RawRow(key, 1, dict(reversed(list(payload.items())))) for key, payload in payloads.items()]
    assert upsert(warehouse, again).unchanged == len(payloads)


def test_a_payload_neither_backend_can_keep_exactly_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(UnstorablePayload, match=r"\['bad'\]"), warehouse.transaction() as tx:
        tx.upsert_raw(TABLE, [RawRow("ok", 1, {}), RawRow("bad", 1, {"s": "a\x00b"})], "run-1")
    assert warehouse.raw_records(TABLE) == {}


def test_bulk_batches_span_several_statement_pages(warehouse: Warehouse) -> None:
    rows = [RawRow(str(i), 1_000, {"i": i, "pad": "x" * 100}) for i in range(12_000)]
    assert upsert(warehouse, rows) == UpsertResult(inserted=12_000)
    mixed = [
        RawRow(r.id, 2_000, {**r.payload, "pad": "y"})
        if int(r.id) % 3 == 0
        else RawRow(r.id, 999 if int(r.id) % 3 == 1 else 1_000, r.payload)
        for r in rows
    ]
    assert upsert(warehouse, [*mixed, RawRow("new", 1, {})]) == UpsertResult(
        inserted=1, updated=4_000, unchanged=4_000, stale=4_000
    )
    assert warehouse.query(f"SELECT count(*), max(version), min(version) FROM {TABLE}") == [(12_001, 2_000, 1)]


def test_invalid_names_are_rejected_before_reaching_sql(warehouse: Warehouse) -> None:
    for bad in ["crm_contacts", "raw.Contacts", "raw.x; DROP TABLE raw.crm_contacts", 'raw."x"', "a.b.c", ""]:
        with pytest.raises(InvalidIdentifier, match=r"expected 'schema\.table'"):
            warehouse.ensure_raw_table(bad)
        with pytest.raises(InvalidIdentifier), warehouse.transaction() as tx:
            tx.upsert_raw(bad, [RawRow("1", 1, {})], "run-1")
        with pytest.raises(InvalidIdentifier):
            warehouse.raw_records(bad)
    with pytest.raises(InvalidIdentifier, match="column"), warehouse.transaction() as tx:
        tx.append("ops.api_calls", [{"run_id); DROP TABLE ops.cursors; --": "x"}])
    assert warehouse.query("SELECT count(*) FROM ops.cursors") == [(0,)]


def test_nesting_sessions_fails_fast_instead_of_deadlocking(warehouse: Warehouse) -> None:
    with warehouse.transaction() as tx:
        with pytest.raises(NestedAccessError, match=r"tx\.execute"):
            warehouse.cursor("crm/contacts")
        assert tx.execute("SELECT count(*) FROM ops.cursors WHERE stream = ?", ["crm/contacts"]) == [(0,)]
    assert warehouse.cursor("crm/contacts") is None


def test_from_url() -> None:
    assert Warehouse.from_url("postgres://u@h/db").backend == "postgres"
    assert "secret" not in repr(Warehouse.from_url("postgresql://u:secret@h:5432/db"))
    with pytest.raises(ValueError, match="in-memory"):
        Warehouse.from_url(":memory:")


def _writer(url: str, worker: int, start: multiprocessing.synchronize.Event, results) -> None:
    """One step process: creates the tables itself (as every step does), then writes chunk by chunk."""
    try:
        wh = Warehouse.from_url(url)
        start.wait(30)
        wh.ensure_ops_tables()
        wh.ensure_raw_table(CONCURRENT)
        for chunk in range(8):
            own = [RawRow(f"w{worker}-{chunk}-{i}", chunk, {"worker": worker, "i": i}) for i in range(25)]
            shared = [RawRow(f"shared-{i}", chunk * 10 + worker, {"by": worker, "chunk": chunk}) for i in range(10)]
            with wh.transaction() as tx:
                tx.upsert_raw(CONCURRENT, [*own, *shared], f"run-{worker}")
                tx.set_cursor(f"stream/{worker}", str(chunk), f"run-{worker}")
                tx.append("ops.api_calls", [{"run_id": f"run-{worker}", "attempt": chunk}])
            assert wh.cursor(f"stream/{worker}") == str(chunk)
        results.put((worker, None))
    except BaseException as error:
        results.put((worker, repr(error)))


def test_concurrent_writer_processes(warehouse: Warehouse) -> None:
    context = multiprocessing.get_context("spawn")  # like Dagster's multiprocess executor
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_writer, args=(warehouse.target, w, start, results)) for w in range(3)]
    for process in processes:
        process.start()
    start.set()
    outcomes = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert outcomes == {0: None, 1: None, 2: None}

    records = warehouse.raw_records(CONCURRENT)
    assert len(records) == 3 * 8 * 25 + 10
    assert all(records[f"w{w}-{c}-{i}"]["version"] == c for w in range(3) for c in range(8) for i in range(25))
    # the shared ids hold the highest version anyone wrote: 7 * 10 + 2, by worker 2
    assert {records[f"shared-{i}"]["version"] for i in range(10)} == {72}
    assert {records[f"shared-{i}"]["payload"]["by"] for i in range(10)} == {2}
    assert warehouse.query("SELECT count(*) FROM ops.api_calls") == [(24,)]
    assert sorted(warehouse.query("SELECT stream, value FROM ops.cursors")) == [(f"stream/{w}", "7") for w in range(3)]


def test_replace_table_rebuilds_a_derived_table_with_typed_columns(warehouse: Warehouse) -> None:
    import datetime as dt

    import pandas as pd

    columns = {"id": "TEXT NOT NULL", "amount": "BIGINT", "share": "DOUBLE", "won": "BOOLEAN",
               "happened_at": "TIMESTAMPTZ", "extra": "JSON"}  # fmt: skip
    moment = dt.datetime(2026, 2, 28, 12, 30, tzinfo=dt.UTC)
    first = pd.DataFrame(
        [
            {"id": "a", "amount": 150000, "share": 0.5, "won": True, "happened_at": moment, "extra": {"k": [1, None]}},
            {"id": "b", "amount": None, "share": None, "won": False, "happened_at": pd.NaT, "extra": None},
        ]
    )
    with warehouse.transaction() as tx:
        assert tx.replace_table("canonical.things", columns, first) == 2
    rows = warehouse.query("SELECT id, amount, share, won, happened_at, extra FROM canonical.things ORDER BY id")
    assert rows[0][:4] == ("a", 150000, 0.5, True) and rows[0][4] == moment and rows[0][5] == {"k": [1, None]}
    assert rows[1] == ("b", None, None, False, None, None)
    with warehouse.transaction() as tx:
        tx.replace_table("canonical.things", columns, first.iloc[:0])
    assert warehouse.query("SELECT count(*) FROM canonical.things") == [(0,)]
