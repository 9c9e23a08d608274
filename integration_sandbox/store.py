"""In-memory records of one object type, kept in the order the vendor lists them.

Rendered JSON is cached per record and view, so serving a page is a join of ready bytes: the sandbox must
never be the bottleneck of a benchmark.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

Record = dict[str, Any]


class Collection:
    def __init__(
        self,
        object_type: str,
        records: list[Record],
        *,
        order_key: Callable[[Record], Any],
        id_of: Callable[[Record], Hashable] = lambda r: r["id"],
    ) -> None:
        self.object_type = object_type
        self._order_key, self._id_of = order_key, id_of
        self._lock = threading.RLock()
        self._records: dict[Hashable, Record] = {}
        self._rendered: dict[Hashable, dict[Hashable, bytes]] = {}
        for record in records:
            self._records[id_of(record)] = record
        ordered = sorted(self._records.values(), key=order_key)
        self._keys = [order_key(r) for r in ordered]
        self._ids = [id_of(r) for r in ordered]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        with self._lock:
            return iter([self._records[i] for i in self._ids])

    def get(self, record_id: Hashable) -> Record | None:
        return self._records.get(record_id)

    def put(self, record: Record) -> None:
        """Inserts or replaces a record, keeping the listing order."""
        record_id, key = self._id_of(record), self._order_key(record)
        with self._lock:
            old = self._records.get(record_id)
            if old is not None:
                self._unlink(record_id, self._order_key(old))
            index = bisect.bisect_right(self._keys, key)
            self._keys.insert(index, key)
            self._ids.insert(index, record_id)
            self._records[record_id] = record
            self._forget(record_id)

    def remove(self, record_id: Hashable) -> Record | None:
        with self._lock:
            record = self._records.pop(record_id, None)
            if record is not None:
                self._unlink(record_id, self._order_key(record))
                self._forget(record_id)
            return record

    def index_after(self, record_id: Hashable) -> int | None:
        """Position just past `record_id` in the listing; None when the record is unknown."""
        with self._lock:
            record = self._records.get(record_id)
            if record is None:
                return None
            return self._locate(record_id, self._order_key(record)) + 1

    def index_past_key(self, key: Any) -> int:
        """Position of the first record ordered after `key`."""
        with self._lock:
            return bisect.bisect_right(self._keys, key)

    def scan(
        self, start: int, limit: int, keep: Callable[[Record], bool] | None = None
    ) -> tuple[list[Record], int | None]:
        """Up to `limit` records from position `start` that `keep` accepts, and where to resume (None: end)."""
        found: list[Record] = []
        with self._lock:
            index, total = start, len(self._ids)
            while index < total and len(found) < limit:
                record = self._records[self._ids[index]]
                index += 1
                if keep is None or keep(record):
                    found.append(record)
            if index < total and keep is not None:
                # Look ahead so the last page does not promise a next page that is empty.
                while index < total and not keep(self._records[self._ids[index]]):
                    index += 1
            return found, (index if index < total else None)

    def render(self, record: Record, view: Hashable, to_bytes: Callable[[Record], bytes]) -> bytes:
        """The record as the vendor serves it in `view`, from cache when unchanged."""
        cache = self._rendered.get(view)
        if cache is None:
            cache = self._rendered.setdefault(view, {})
        record_id = self._id_of(record)
        rendered = cache.get(record_id)
        if rendered is None:
            rendered = cache[record_id] = to_bytes(record)
        return rendered

    def forget_rendered(self) -> None:
        self._rendered = {}

    def _forget(self, record_id: Hashable) -> None:
        for cache in self._rendered.values():
            cache.pop(record_id, None)

    def _locate(self, record_id: Hashable, key: Any) -> int:
        index = bisect.bisect_left(self._keys, key)
        while self._ids[index] != record_id:
            index += 1
        return index

    def _unlink(self, record_id: Hashable, key: Any) -> None:
        index = self._locate(record_id, key)
        del self._keys[index]
        del self._ids[index]


class VersionedCollection(Collection):
    """A Collection that counts its changes, so indexes and cached answers built on it know when to rebuild.

    Every change counts, whichever path makes it: a vendor's handlers, `/__sandbox__/mutate`, inspection writes.
    """

    version = 0

    def put(self, record: Record) -> None:
        super().put(record)
        self.version += 1

    def remove(self, record_id: Hashable) -> Record | None:
        removed = super().remove(record_id)
        self.version += 1
        return removed
