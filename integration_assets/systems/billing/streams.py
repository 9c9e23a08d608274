"""Stripe streams: a full pass lists every object; later passes read `/v1/events` since the cursor.

Stripe lists have no `updated` filter, so changes come from events, which reach back 30 days only: an older
cursor means a full re-list. Events are listed newest first, so the first event seen for an object is its
latest state; one row per object is kept, versioned by the end of the event's second (a listing that
fetched the object earlier in that second never wins over the event).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from integration_assets.core.access import Operation
from integration_assets.core.catalog import Chunk
from integration_assets.core.http import ApiClient
from integration_assets.core.sync import chunked
from integration_assets.core.timeutil import now_ms
from integration_assets.core.warehouse import RawRow
from integration_assets.core.warehouse.rows import build_rows

EVENT_WINDOW_S = 30 * 24 * 3600
PAGE = 100


@dataclass(frozen=True)
class StripeStream:
    object_type: str  # customers, invoices, charges
    object_name: str  # the `object` field: customer, invoice, charge
    deletes_vanish: bool = False  # deleted objects leave the listing (customers): mark the missing ones
    chunk_records: int = 5_000
    window_margin_s: int = 3600

    def read(self, client: ApiClient, cursor: str | None) -> Iterator[Chunk]:
        if cursor is None or time.time() - int(cursor) > EVENT_WINDOW_S - self.window_margin_s:
            yield from self._listing(client)
        else:
            yield from self._events(client, since_s=int(cursor))

    def _listing(self, client: ApiClient) -> Iterator[Chunk]:
        started_s = int(time.time())
        yield from chunked(self._listed_pages(client), self.chunk_records)
        yield Chunk([], cursor=str(started_s - 1), pages=0, complete_listing=self.deletes_vanish, listed_all=True)

    def _listed_pages(self, client: ApiClient) -> Iterator[tuple[list[RawRow], None]]:
        params: dict[str, object] = {"limit": PAGE}
        while True:
            fetched_ms = now_ms()
            body = client.call(
                Operation.READ,
                self.object_type,
                "GET",
                "/v1/{object_type}",
                path_params={"object_type": self.object_type},
                params=params,
            ).body
            yield (
                build_rows(body["data"], lambda o, version=fetched_ms: RawRow(id=o["id"], version=version, payload=o)),
                None,
            )
            if not (body["has_more"] and body["data"]):
                return
            params["starting_after"] = body["data"][-1]["id"]

    def _events(self, client: ApiClient, since_s: int) -> Iterator[Chunk]:
        latest: dict[str, RawRow] = {}
        malformed: list[RawRow] = []  # quarantined, each alone: one bad event never stops the stream
        newest_s, pages = since_s, 0
        params: dict[str, object] = {
            "limit": PAGE,
            "types[]": f"{self.object_name}.*",
            "created[gte]": since_s,
        }
        while True:
            body = client.call(Operation.READ, "events", "GET", "/v1/events", params=params).body
            pages += 1
            for event in body["data"]:
                try:
                    created_s, snapshot, deleted = self._parse_event(event)
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    malformed.append(_malformed_event(event, error))
                    continue
                newest_s = max(newest_s, created_s)
                if snapshot.get("object") != self.object_name or snapshot["id"] in latest:
                    continue
                latest[snapshot["id"]] = RawRow(
                    id=snapshot["id"], version=created_s * 1000 + 999, payload=snapshot, is_deleted=deleted
                )
            if not (body["has_more"] and body["data"]):
                break
            params["starting_after"] = body["data"][-1]["id"]
        rows = [*latest.values(), *malformed]
        for start in range(0, len(rows), self.chunk_records):
            yield Chunk(rows[start : start + self.chunk_records], pages=pages if start == 0 else 0)
        # The cursor moves only once every event up to it is stored; the same second is read again next time.
        yield Chunk([], cursor=str(newest_s), pages=0 if rows else pages)

    @staticmethod
    def _parse_event(event: dict) -> tuple[int, dict, bool]:
        """(created, in epoch s; the object's snapshot; whether it was deleted); raises KeyError, TypeError or
        ValueError for an event without them."""
        created = event["created"]
        if type(created) is not int:
            raise TypeError("created is not an integer")
        snapshot = event["data"]["object"]
        if not isinstance(snapshot, dict):
            raise TypeError("the object is not a JSON object")
        if not isinstance(snapshot["id"], str) or not snapshot["id"]:
            raise TypeError("the object's id is not a non-empty string")
        kind = event["type"]
        if not isinstance(kind, str):
            raise TypeError("type is not a string")
        return created, snapshot, kind.endswith(".deleted") or bool(snapshot.get("deleted"))


def _malformed_event(event: object, error: Exception) -> RawRow:
    """An event the reader cannot use, as a row the sync quarantines (`malformed_record`), never skipped: the
    object's id when it can be read, else a stand-in made from the event's content by the screening. The
    problem names the error's type only: its message may quote the event's values."""
    data = event.get("data") if isinstance(event, dict) else None
    snapshot = data.get("object") if isinstance(data, dict) else None
    object_id = snapshot.get("id") if isinstance(snapshot, dict) else None
    return RawRow(
        id=object_id if isinstance(object_id, str) and object_id else "",
        version=0,
        payload=event if isinstance(event, dict) else {"value": event},
        problem=f"the event cannot be read ({type(error).__name__})",
    )


STREAMS = (
    StripeStream("customers", "customer", deletes_vanish=True),
    StripeStream("invoices", "invoice"),
    StripeStream("charges", "charge"),
)
