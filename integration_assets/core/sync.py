"""Moves one vendor stream into its raw table, chunk by chunk, without losing or doubling a record.

Each chunk's rows, the cursor that covers them and the call log of the requests that fetched them commit in
one transaction, so a run killed at any point resumes from a cursor that never runs ahead of stored data.
Memory stays bounded by the chunk, whatever the size of the backfill.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from integration_assets.core.catalog import Chunk, StreamSpec
from integration_assets.core.http import ApiClient
from integration_assets.core.warehouse import RawRow, Warehouse

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


def _store(chunks, stream, client, warehouse, table, run_id, listed, report, watchers) -> None:
    """Commits each chunk with its cursor and the calls that fetched it."""
    for chunk in chunks:
        for row in [row for row in chunk.rows if not row.is_deleted][:FIELD_SAMPLE]:  # a tombstone has no shape
            observe_fields(row.payload, report.fields)
        listed.update(row.id for row in chunk.rows)
        with warehouse.transaction() as tx:
            result = tx.upsert_raw(table, chunk.rows, run_id)
            if chunk.complete_listing:
                report.deleted += tx.mark_missing_deleted(table, listed, run_id)
            if chunk.cursor is not None:
                tx.set_cursor(stream.key, chunk.cursor, run_id)
            tx.append("ops.api_calls", [call.as_row() for call in client.call_log.drain()])
        report.fetched += len(chunk.rows)
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.stale += result.stale
        report.deleted += sum(1 for row in chunk.rows if row.is_deleted)
        report.pages += chunk.pages
        report.chunks += 1
        if chunk.cursor is not None:
            report.cursor = chunk.cursor
        for watcher in watchers:
            watcher(chunk.rows)
