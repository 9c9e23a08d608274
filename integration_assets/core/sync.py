"""Moves one vendor stream into its raw table, chunk by chunk, without losing or doubling a record.

Each chunk's rows, the cursor that covers them and the call log of the requests that fetched them commit in
one transaction, so a run killed at any point resumes from a cursor that never runs ahead of stored data.
Memory stays bounded by the chunk, whatever the size of the backfill.

A record that cannot be stored (a NUL character, invalid Unicode, over the size limit, a value the database
refuses, a record its row builder could not read) is quarantined in that same transaction (`core/quarantine.py`)
while the rest of its chunk and the cursor commit: one bad record is a review item and a warning, never a
step failure retried on a deterministic error, nor a stream stopped until someone edits the record.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from integration_assets.core import quarantine
from integration_assets.core.catalog import Chunk, StreamSpec
from integration_assets.core.http import ApiClient
from integration_assets.core.redact import redact
from integration_assets.core.warehouse import RawRow, UpsertResult, Warehouse
from integration_assets.core.warehouse.rows import REFUSED_BY_DATABASE, Rejected, reject, screen
from integration_assets.core.warehouse.transaction import VALUE_REFUSED

T = TypeVar("T")
_DONE = object()


@contextmanager
def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """Produces the next items in a background thread while the caller works on the current one.

    Fetching the next pages overlaps with committing this chunk. At most `depth` items wait, so memory
    stays bounded; an error in the producer is raised in the caller, where it would have been raised anyway.
    """
    slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()  # the caller stopped: end the reader here, where it runs
                    return
        except BaseException as error:  # handed to the caller, which raises it
            offer((_DONE, error))
            return
        offer((_DONE, None))

    def consume() -> Iterator[T]:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        # Wait for the call in flight (bounded by the client's timeouts and retry limits), so that nothing
        # still calls the vendor, or writes to the call log, once the sync has returned.
        worker.join()


def chunked(pages: Iterable[tuple[list[RawRow], str | None]], size: int) -> Iterator[Chunk]:
    """Groups pages of rows into chunks of about `size` rows; a chunk carries its last page's cursor."""
    rows: list[RawRow] = []
    count, cursor = 0, None
    for page_rows, page_cursor in pages:
        rows.extend(page_rows)
        count += 1
        cursor = page_cursor if page_cursor is not None else cursor
        if len(rows) >= size:
            yield Chunk(rows, cursor=cursor, pages=count)
            rows, count, cursor = [], 0, None
    if count:
        yield Chunk(rows, cursor=cursor, pages=count)


@dataclass
class SyncReport:
    stream: str
    mode: str
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    deleted: int = 0
    pages: int = 0
    seconds: float = 0.0
    cursor: str | None = None
    chunks: int = 0
    fields: dict[str, set[str]] = field(default_factory=dict)  # observed payload fields and their JSON types
    quarantined: int = 0  # records not stored, queued for review instead (`core/quarantine.py`)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # reason code → records
    quarantined_ids: list[str] = field(default_factory=list)  # the first few, for the run log
    resolved: int = 0  # records quarantined earlier that this run stored at last
    listed: frozenset[str] | None = None  # the live ids of a pass that listed them all (`Chunk.listed_all`)


FIELD_SAMPLE = 200  # rows per chunk whose fields are observed: a vendor's shape is the same for all its records
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


def observe_fields(payload: dict, into: dict[str, set[str]]) -> None:
    """Field names and JSON types of a payload, one level into `properties` (HubSpot's values live there)."""
    for name, value in payload.items():
        if name == "properties" and isinstance(value, dict):
            for inner, inner_value in value.items():
                into.setdefault(f"properties.{inner}", set()).add(_JSON_TYPES.get(type(inner_value), "null"))
        else:
            into.setdefault(name, set()).add(_JSON_TYPES.get(type(value), "null"))


def sync_stream(
    stream: StreamSpec,
    client: ApiClient,
    warehouse: Warehouse,
    *,
    run_id: str,
    full_refresh: bool = False,
    table: str | None = None,
    chunk_records: int | None = None,
    on_chunk: Iterable[Callable[[list[RawRow]], None]] = (),
) -> SyncReport:
    """Lands `stream` into its raw table (or `table`), from its stored cursor unless `full_refresh`.

    Each of `on_chunk` sees every chunk's rows once they are committed (the checks that judge what landed).
    """
    table = table or stream.raw_table
    reader = stream.reader if chunk_records is None else replace(stream.reader, chunk_records=chunk_records)
    warehouse.ensure_raw_table(table)
    cursor = None if full_refresh else warehouse.cursor(stream.key)
    report = SyncReport(stream=stream.key, mode="full" if cursor is None else "incremental", cursor=cursor)
    listed: set[str] = set()  # ids a pass saw: after a complete listing, the ones missing were deleted
    started = time.monotonic()
    try:
        with warehouse.held(), prefetched(reader.read(client, cursor)) as chunks:
            _store(chunks, stream, client, warehouse, table, run_id, listed, report, tuple(on_chunk))
    finally:
        leftover = client.call_log.drain()
        if leftover:
            with warehouse.transaction() as tx:
                tx.append("ops.api_calls", [call.as_row() for call in leftover])
        report.seconds = round(time.monotonic() - started, 3)
    return report


_INPUT = re.compile(r"\s+Input:")  # DuckDB quotes the refused text after it
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _first_line(error: BaseException) -> str:
    """The error's first line, redacted and cut short: DuckDB's first line can quote the refused value, and
    the database's DETAIL and CONTEXT lines that follow do (personal data)."""
    line = (str(error).strip().splitlines() or [""])[0]
    line = _INPUT.split(line, maxsplit=1)[0].rstrip()  # DuckDB: "Malformed JSON at byte 3.  Input: {…}"
    line = _QUOTED.sub("<value>", line)  # DuckDB: "Could not convert string 'Ann Lee' to INT32"
    line = re.split(r"['\"]", line, maxsplit=1)[0].rstrip()  # an unbalanced quote: what follows it may be a value
    return redact(line)[:160]


class _Probe(Exception):
    """Ends a probing transaction: it only asks whether the database takes some rows, and always rolls back."""


def _refused(warehouse: Warehouse, table: str, rows: list[RawRow], run_id: str) -> list[RawRow]:
    """The rows the database refuses, found by halving: a chunk of 5,000 with one bad record costs about 25
    rolled-back probes. Rows refused only together (none alone) are not a record's fault: none returned."""

    def refused(part: list[RawRow]) -> bool:
        try:
            with warehouse.transaction() as tx:
                tx.upsert_raw(table, part, run_id)
                raise _Probe
        except _Probe:
            return False
        except VALUE_REFUSED:
            return True

    def search(part: list[RawRow]) -> list[RawRow]:
        if not part or not refused(part):
            return []
        if len(part) == 1:
            return part
        middle = len(part) // 2
        return search(part[:middle]) + search(part[middle:])

    return search(rows)


def _commit(
    warehouse: Warehouse,
    stream: StreamSpec,
    table: str,
    chunk: Chunk,
    rows: list[RawRow],
    rejected: list[Rejected],
    calls: list,
    listed: set[str],
    quarantined: dict[str, int],
    run_id: str,
) -> tuple[UpsertResult, int, int]:
    """One chunk's transaction: its storable rows, its quarantined records, its cursor and its calls together.
    Returns what the upsert did, the rows marked deleted by a complete listing, and the records resolved."""
    deleted = 0
    with warehouse.transaction() as tx:
        # On PostgreSQL one chunk writer per table at a time, taken first whether or not any row is storable:
        # the quarantine's read-then-write of its items would otherwise race another sync's on the same keys.
        tx.lock_table(table)
        result = tx.upsert_raw(table, rows, run_id)
        if chunk.complete_listing:
            deleted = tx.mark_missing_deleted(table, listed, run_id)
        quarantine.record(tx, stream, rejected, run_id)
        fixed = quarantine.resolve(tx, stream, rows, dict(quarantined), run_id) if quarantined else set()
        if chunk.cursor is not None:
            tx.set_cursor(stream.key, chunk.cursor, run_id)
        tx.append("ops.api_calls", [call.as_row() for call in calls])
    for record_id in fixed:  # committed: forget them for the chunks that follow
        quarantined.pop(record_id, None)
    quarantined.update({item.id: item.version or 0 for item in rejected})  # a later chunk may bring a fixed version
    return result, deleted, len(fixed)


def _store(chunks, stream, client, warehouse, table, run_id, listed, report, watchers) -> None:
    """Commits each chunk with its cursor and the calls that fetched it; quarantines what cannot be stored."""
    quarantine.ensure_tables(warehouse)
    quarantined = quarantine.quarantined_versions(warehouse, stream)
    tombstones: set[str] = set()  # ids the pass saw deleted: not in the vendor's list of live records
    for chunk in chunks:
        screened = screen(chunk.rows)
        rows, rejected = screened.rows, screened.rejected
        for row in [row for row in rows if not row.is_deleted][:FIELD_SAMPLE]:  # a tombstone has no shape
            observe_fields(row.payload, report.fields)
        # a quarantined record is still at the source: a complete listing must not mark its stored version deleted
        listed.update(row.id for row in chunk.rows if isinstance(row.id, str) and row.id)
        tombstones.update(row.id for row in chunk.rows if row.is_deleted)
        if chunk.listed_all:
            report.listed = frozenset(listed - tombstones)
        calls = client.call_log.drain()  # kept out of the transaction: a refused chunk is written again
        try:
            result, deleted, fixed = _commit(
                warehouse, stream, table, chunk, rows, rejected, calls, listed, quarantined, run_id
            )
        except VALUE_REFUSED as error:
            refused = _refused(warehouse, table, rows, run_id)
            if not refused:
                raise
            rows = [row for row in rows if not any(row is bad for bad in refused)]
            rejected = rejected + [
                # the first line only, redacted: the database's DETAIL and CONTEXT lines quote the value
                reject(row, REFUSED_BY_DATABASE, f"{type(error).__name__}: {_first_line(error)}")
                for row in refused
            ]
            result, deleted, fixed = _commit(
                warehouse, stream, table, chunk, rows, rejected, calls, listed, quarantined, run_id
            )
        report.deleted += deleted
        report.resolved += fixed
        report.quarantined += len(rejected)
        for item in rejected:
            report.quarantine_reasons[item.reason_code] = report.quarantine_reasons.get(item.reason_code, 0) + 1
        report.quarantined_ids += [item.id for item in rejected][: max(0, 20 - len(report.quarantined_ids))]
        report.fetched += len(chunk.rows)
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.stale += result.stale
        report.deleted += sum(1 for row in rows if row.is_deleted)
        report.pages += chunk.pages
        report.chunks += 1
        if chunk.cursor is not None:
            report.cursor = chunk.cursor
        for watcher in watchers:
            watcher(rows)
