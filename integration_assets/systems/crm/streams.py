"""HubSpot streams: a full pass lists every record (archived ones too); later passes search by last change.

Search is sorted by the last-modified property and filtered from the stored cursor less an overlap (search
lags writes by seconds); what comes twice is de-duplicated on id and version by the warehouse. HubSpot
refuses to page past 10,000 search results, so the query restarts from the last timestamp seen.

HubSpot hides a link to an archived record without touching the record that links to it: a deal associated with
a company archived since the last sync keeps its `updatedAt`, so no search brings it back, and raw.crm_deals
keeps the link as HubSpot last showed it (a raw table holds what the vendor sent). Nothing here looks for such
links: the canonical layer notices by checking the state of the records a link names (`canonical/build/links.py`),
which also links the deal again when the company is restored. It costs nothing at the connector.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from integration_assets.core.access import Operation
from integration_assets.core.catalog import Chunk
from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.http import ApiClient
from integration_assets.core.sync import chunked
from integration_assets.core.timeutil import iso_to_ms, now_ms
from integration_assets.core.warehouse import RawRow
from integration_assets.core.warehouse.rows import build_rows

SEARCH_CAP = 10_000
PAGE = 100
LIST = "/crm/v3/objects/{object_type}"


@dataclass(frozen=True)
class HubSpotStream:
    object_type: str
    properties: tuple[str, ...]
    last_modified: str  # the property search filters and sorts on
    associations: tuple[str, ...] = ()
    chunk_records: int = 5_000
    overlap_ms: int = 5 * 60 * 1000

    def read(self, client: ApiClient, cursor: str | None) -> Iterator[Chunk]:
        if cursor is None:
            started = now_ms()
            yield from self._listing(client, archived=False)
            yield from self._listing(client, archived=True)
            yield Chunk([], cursor=str(started), pages=0, complete_listing=True)
        else:
            yield from self._changes(client, since_ms=int(cursor))
            yield from self._listing(client, archived=True)

    def _row(self, record: dict) -> RawRow:
        archived = bool(record.get("archived"))
        version = max(iso_to_ms(record.get("updatedAt")) or 0, iso_to_ms(record.get("archivedAt")) or 0)
        return RawRow(id=str(record["id"]), version=version, payload=record, is_deleted=archived)

    def _listing(self, client: ApiClient, *, archived: bool) -> Iterator[Chunk]:
        return chunked(self._listed_pages(client, archived), self.chunk_records)

    def _listed_pages(self, client: ApiClient, archived: bool) -> Iterator[tuple[list[RawRow], None]]:
        params = {"limit": PAGE, "properties": ",".join(self.properties), "archived": str(archived).lower()}
        if self.associations:
            params["associations"] = ",".join(self.associations)
        while True:
            body = client.call(
                Operation.READ,
                self.object_type,
                "GET",
                LIST,
                path_params={"object_type": self.object_type},
                params=params,
            ).body
            yield build_rows(body["results"], self._row), None
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if after is None:
                return
            params["after"] = after

    def _changes(self, client: ApiClient, since_ms: int) -> Iterator[Chunk]:
        return chunked(self._changed_pages(client, since_ms), self.chunk_records)

    def _changed_pages(self, client: ApiClient, since_ms: int) -> Iterator[tuple[list[RawRow], str]]:
        """Search pages sorted by last change; each carries the newest change time seen so far.

        Every page is a new query from the last change time seen (never an offset into an old result list):
        a record edited while we read moves to the end instead of shifting unread records onto pages already
        read. Offsets are used only to page through one millisecond that holds more than a page.
        """
        floor, newest, offset = since_ms - self.overlap_ms, since_ms, 0
        while True:
            body = client.call(
                Operation.READ,
                self.object_type,
                "POST",
                LIST + "/search",
                path_params={"object_type": self.object_type},
                json_body={
                    "filterGroups": [
                        {"filters": [{"propertyName": self.last_modified, "operator": "GTE", "value": str(floor)}]}
                    ],
                    "sorts": [{"propertyName": self.last_modified, "direction": "ASCENDING"}],
                    "properties": list(self.properties),
                    "limit": PAGE,
                    "after": str(offset),
                },
            ).body
            results = body["results"]
            stamps = [self._stamp(r) for r in results]
            newest = max([newest, *stamps])  # from the search itself: a later edit must not move the cursor
            rows: list[RawRow] = []
            for hit in results:
                found = self._with_associations(client, hit)
                if isinstance(found, RawRow):
                    rows.append(found)
                elif found:
                    rows.extend(build_rows([found], self._row))
            yield rows, str(newest)
            if not results or (body.get("paging") or {}).get("next") is None:
                return
            if stamps[-1] > floor:
                floor, offset = stamps[-1], 0
            else:
                offset += PAGE
                if offset + PAGE > SEARCH_CAP:
                    raise RuntimeError(
                        f"crm/{self.object_type}: more than {SEARCH_CAP} records changed in one millisecond; "
                        "run a full refresh"
                    )

    def _stamp(self, record: object) -> int:
        """The hit's last change (epoch ms), 0 when it has none readable: a malformed hit never stops the page."""
        properties = record.get("properties") if isinstance(record, dict) else None
        value = properties.get(self.last_modified) if isinstance(properties, dict) else None
        return (iso_to_ms(value) or 0) if isinstance(value, str) else 0

    def _with_associations(self, client: ApiClient, record: dict) -> dict | RawRow | None:
        """Search answers carry no associations: read them with the record, as a listing would show it.

        None when the record was archived since the search: the archived listing that follows brings it. A hit
        that cannot be read back (no id, an id the client refuses to put in a path, the vendor refusing that
        one record) comes back as a row with `problem` set, quarantined alone; a retryable failure, or one of
        the whole connection (auth), still raises."""
        if not self.associations:
            return record
        try:
            record_id = str(record["id"])
            return client.call(
                Operation.READ,
                self.object_type,
                "GET",
                LIST + "/{record_id}",
                path_params={"object_type": self.object_type, "record_id": record_id},
                params={"properties": ",".join(self.properties), "associations": ",".join(self.associations)},
                record_id=record_id,
            ).body
        except IntegrationError as error:
            if error.category == Category.NOT_FOUND:
                return None
            if error.retryable or error.category in _NOT_PER_RECORD:
                raise
            return _unreadable(record, f"reading it back with its associations failed ({error.category})")
        except (KeyError, TypeError) as error:
            return _unreadable(record, f"the search hit cannot be read back ({type(error).__name__})")


# Failures of the connection, not of one record: every other record would fail the same way.
_NOT_PER_RECORD = frozenset({Category.AUTH_EXPIRED, Category.AUTH_INVALID})


def _unreadable(record: object, problem: str) -> RawRow:
    """A search hit that cannot be read back, as a row the sync quarantines (`malformed_record`): its id when it
    has one (a stand-in is made from its content otherwise); `problem` names the failure, never a value."""
    record_id = record.get("id") if isinstance(record, dict) else None
    return RawRow(
        id=str(record_id) if record_id not in (None, "") else "",
        version=0,
        payload=record if isinstance(record, dict) else {"value": record},
        problem=problem,
    )


STREAMS = (
    HubSpotStream(
        "companies",
        ("name", "domain", "phone", "city", "industry", "createdate", "hs_lastmodifieddate", "hs_object_id"),
        "hs_lastmodifieddate",
    ),
    HubSpotStream(
        "contacts",
        (
            "email",
            "firstname",
            "lastname",
            "phone",
            "lifecyclestage",
            "createdate",
            "lastmodifieddate",
            "hs_object_id",
            "associatedcompanyid",
        ),
        "lastmodifieddate",
    ),
    HubSpotStream(
        "deals",
        (
            "dealname",
            "amount",
            "deal_currency_code",
            "closedate",
            "pipeline",
            "dealstage",
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
        ),
        "hs_lastmodifieddate",
        associations=("companies", "contacts"),
    ),
)
