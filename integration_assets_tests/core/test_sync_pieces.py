"""The sync's small pieces on their own: chunking pages, and fetching ahead while committing."""

from __future__ import annotations

import threading
import time

import pytest

from integration_assets.core.sync import chunked, prefetched
from integration_assets.core.warehouse import RawRow


def _page(start: int, size: int) -> list[RawRow]:
    return [RawRow(str(i), 1, {"i": i}) for i in range(start, start + size)]


def test_chunks_group_pages_and_carry_the_last_cursor() -> None:
    pages = [(_page(0, 100), "c1"), (_page(100, 100), "c2"), (_page(200, 100), None), (_page(300, 50), "c4")]
    chunks = list(chunked(iter(pages), size=200))
    assert [len(c.rows) for c in chunks] == [200, 150]
    assert [c.cursor for c in chunks] == ["c2", "c4"]
    assert [c.pages for c in chunks] == [2, 2]
    assert [r.id for c in chunks for r in c.rows] == [str(i) for i in range(350)]


def test_prefetch_keeps_order_and_stays_one_item_ahead() -> None:
    produced: list[int] = []

    def items():
        for i in range(5):
            produced.append(i)
            yield i

    seen = []
    with prefetched(items(), depth=1) as ahead:
        for item in ahead:
            time.sleep(0.05)
            seen.append(item)
            assert len(produced) - len(seen) <= 2, "memory bounded: at most one waiting, one being made"
    assert seen == [0, 1, 2, 3, 4]


def test_an_error_while_fetching_reaches_the_caller() -> None:
    def items():
        yield 1
        raise RuntimeError("vendor went away")

    with pytest.raises(RuntimeError, match="vendor went away"), prefetched(items()) as ahead:
        assert list(ahead) == [1]


def test_a_caller_that_stops_early_stops_the_fetching() -> None:
    stopped = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            stopped.set()

    started = time.monotonic()
    with prefetched(endless()) as ahead:
        assert next(iter(ahead)) == 0
    assert time.monotonic() - started < 2
    assert stopped.wait(2), "the reader was closed, so its clean-up ran"
