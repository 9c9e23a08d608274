"""Records in id order that also keep the timeline incremental exports walk."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from typing import Any

from integration_sandbox.store import Collection, Record
from integration_sandbox.vendors.zendesk.definitions import epoch


def stamp(record: Record) -> None:
    """Gives a record without one the `generated_timestamp` its `updated_at` implies."""
    if not isinstance(record.get("generated_timestamp"), int):
        record["generated_timestamp"] = epoch(record.get("updated_at")) or 0


class ExportCollection(Collection):
    """A collection in id order that also keeps a timeline in (generated_timestamp, write sequence) order.

    The timeline is what incremental exports walk; it follows every `put`/`remove`, including the ones the
    sandbox's inspection routes make directly. It also counts the records the plain lists show.
    """

    def __init__(self, object_type: str, records: list[Record], *, visible: Callable[[Record], bool]) -> None:
        for record in records:
            stamp(record)
        super().__init__(object_type, records, order_key=lambda r: r["id"])
        self.visible = visible
        ordered = sorted(self._records.values(), key=lambda r: (r["generated_timestamp"], r["id"]))
        self._timeline: list[tuple[int, int]] = []  # (generated_timestamp, sequence), ascending
        self._at: dict[tuple[int, int], Hashable] = {}  # timeline key → record id
        self._key_of: dict[Hashable, tuple[int, int]] = {}  # record id → timeline key
        self._sequence = 0
        self.visible_count = 0
        for record in ordered:
            self._track(record)

    def put(self, record: Record) -> None:
        stamp(record)
        with self._lock:
            old = self._records.get(record["id"])
            super().put(record)
            if old is not None:
                self._untrack(old)
            self._track(record)

    def remove(self, record_id: Hashable) -> Record | None:
        with self._lock:
            record = super().remove(record_id)
            if record is not None:
                self._untrack(record)
            return record

    def last_id(self) -> Any:
        with self._lock:
            return self._ids[-1] if self._ids else None

    def scan_back(self, end: int, limit: int, keep: Callable[[Record], bool]) -> tuple[list[Record], bool]:
        """Up to `limit` kept records before position `end`, ascending, and whether more precede them."""
        found: list[Record] = []
        with self._lock:
            index = end - 1
            while index >= 0 and len(found) < limit:
                record = self._records[self._ids[index]]
                index -= 1
                if keep(record):
                    found.append(record)
            while index >= 0 and not keep(self._records[self._ids[index]]):
                index -= 1
            return found[::-1], index >= 0

    def export(
        self,
        after: tuple[int, int],
        limit: int,
        cutoff: float,
        keep: Callable[[Record], bool] | None,
        *,
        whole_seconds: bool = False,
    ) -> tuple[list[Record], tuple[int, int], bool]:
        """Records after timeline key `after` whose generated_timestamp is at most `cutoff`.

        Returns the records, the key of the last one examined (where to resume) and whether the stream
        has ended (nothing older than `cutoff` follows). With `whole_seconds`, a page that fills up goes
        on to the end of its last second, as Zendesk's time-based export does.
        """
        found: list[Record] = []
        last = after
        with self._lock:
            index, total = bisect.bisect_right(self._timeline, after), len(self._timeline)
            while index < total:
                key = self._timeline[index]
                if key[0] > cutoff:
                    break
                if len(found) >= limit and not (whole_seconds and found and key[0] == last[0]):
                    break
                record = self._records[self._at[key]]
                index += 1
                last = key
                if keep is None or keep(record):
                    found.append(record)
            ended = index >= total or self._timeline[index][0] > cutoff
            return found, last, ended

    def _track(self, record: Record) -> None:
        key = (int(record.get("generated_timestamp") or 0), self._sequence)
        self._sequence += 1
        bisect.insort(self._timeline, key)
        self._at[key] = record["id"]
        self._key_of[record["id"]] = key
        self.visible_count += bool(self.visible(record))

    def _untrack(self, record: Record) -> None:
        key = self._key_of.pop(record["id"], None)
        if key is not None:
            del self._timeline[bisect.bisect_left(self._timeline, key)]
            del self._at[key]
        self.visible_count -= bool(self.visible(record))
