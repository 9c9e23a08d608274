"""Zendesk streams: incremental exports, from the beginning on a full pass and from the cursor after.

Tickets and users use the cursor export (`after_cursor` stays valid after `end_of_stream`); organizations
have only the time-based export, which repeats records at second boundaries (de-duplicated on id and
version). Deleted records stay in the exports and are marked: tickets by status `deleted`, users by `active`
false, organizations by `deleted_at` (their tombstone; show and the lists answer as if they never were).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from integration_assets.core.access import Operation
from integration_assets.core.catalog import Chunk
from integration_assets.core.http import ApiClient
from integration_assets.core.timeutil import iso_to_ms
from integration_assets.core.warehouse import RawRow
from integration_assets.core.warehouse.rows import build_rows

EXPORT_PAGE = 1000


def _deleted(object_type: str, record: dict) -> bool:
    if object_type == "tickets":
        return record.get("status") == "deleted"
    if object_type == "users":
        return record.get("active") is False
    return record.get("deleted_at") is not None


@dataclass(frozen=True)
class ZendeskStream:
    object_type: str
    by_cursor: bool = True  # False: the time-based export (organizations)
    chunk_records: int = EXPORT_PAGE  # one export page per transaction, at most Zendesk's 1,000

    def _row(self, record: dict) -> RawRow:
        version = max(iso_to_ms(record.get("updated_at")) or 0, int(record.get("generated_timestamp") or 0) * 1000)
        return RawRow(
            id=str(record["id"]),
            version=version,
            payload=record,
            is_deleted=_deleted(self.object_type, record),
        )

    def read(self, client: ApiClient, cursor: str | None) -> Iterator[Chunk]:
        per_page = min(EXPORT_PAGE, self.chunk_records)
        suffix = "/cursor" if self.by_cursor else ""
        template = "/api/v2/incremental/{object_type}" + suffix + ".json"
        if self.by_cursor:
            params = {"per_page": per_page, **({"cursor": cursor} if cursor else {"start_time": 0})}
        else:
            params = {"per_page": per_page, "start_time": int(cursor or 0)}
        while True:
            body = client.call(
                Operation.READ,
                self.object_type,
                "GET",
                template,
                path_params={"object_type": self.object_type},
                params=params,
            ).body
            rows = build_rows(body[self.object_type], self._row)
            position = body["after_cursor"] if self.by_cursor else str(body["end_time"])
            yield Chunk(rows, cursor=position)
            if body["end_of_stream"]:
                return
            if self.by_cursor:
                params = {"per_page": per_page, "cursor": position}
            else:
                params = {"per_page": per_page, "start_time": int(position)}


STREAMS = (
    ZendeskStream("organizations", by_cursor=False),
    ZendeskStream("users"),
    ZendeskStream("tickets"),
)
