"""Edges found in review: records edited while a search is read, and deletes seen only by a re-list."""

from __future__ import annotations

import time

import pytest
import requests

from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.sync import sync_stream
from integration_assets.core.warehouse import Warehouse
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets_tests.testing.sandbox import FREE_PORTS
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox


def _warehouse(tmp_path) -> Warehouse:
    warehouse = Warehouse.from_url(str(tmp_path / "w.duckdb"))
    warehouse.ensure_ops_tables()
    return warehouse


def test_a_record_edited_while_the_search_is_read_does_not_hide_another(tmp_path) -> None:
    generate(tmp_path / "data", seed=1, scale=200)
    contacts = CATALOG.stream("crm/contacts")
    with Sandbox(tmp_path / "data", ports=FREE_PORTS) as sandbox:
        base = sandbox.url("hubspot")
        warehouse = _warehouse(tmp_path)
        warehouse.ensure_raw_table(contacts.raw_table)
        with warehouse.transaction() as tx:
            tx.set_cursor(contacts.key, "1", "setup")  # an incremental pass whose window covers everything
        client = HubSpotResource(base_url=base, access_token="pat-sandbox").client("crm_source")
        call, searches = client.call, []

        def call_then_edit(*args, **kwargs):
            answer = call(*args, **kwargs)
            if args[3].endswith("/search"):
                searches.append(answer)
                if len(searches) == 1:  # someone edits a record we have just read
                    edited = answer.body["results"][0]["id"]
                    requests.patch(
                        f"{base}/crm/v3/objects/contacts/{edited}",
                        json={"properties": {"firstname": "Edited"}},
                        headers={"Authorization": "Bearer pat-sandbox"},
                        timeout=10,
                    ).raise_for_status()
            return answer

        client.call = call_then_edit
        sync_stream(contacts, client, warehouse, run_id="r1")
        live = requests.get(f"{base}/__sandbox__/records/contacts", timeout=30).json()
    live_ids = {str(r["id"]) for r in live if not r.get("archived")}
    assert len(searches) > 2
    assert live_ids - set(warehouse.raw_records(contacts.raw_table)) == set()


def test_a_relist_after_an_expired_event_window_marks_deleted_customers(tmp_path) -> None:
    generate(tmp_path / "data", seed=2, scale=40)
    customers = CATALOG.stream("billing/customers")
    with Sandbox(tmp_path / "data", ports=FREE_PORTS) as sandbox:
        base = sandbox.url("stripe")
        connection = StripeResource(base_url=base, api_key="sk_test_sandbox", requests_per_second=None)
        warehouse = _warehouse(tmp_path)
        sync_stream(customers, connection.client("billing_source"), warehouse, run_id="full")
        victim = next(i for i, r in warehouse.raw_records(customers.raw_table).items() if not r["is_deleted"])
        requests.delete(
            f"{base}/v1/customers/{victim}", headers={"Authorization": "Bearer sk_test_sandbox"}, timeout=10
        ).raise_for_status()
        with warehouse.transaction() as tx:  # the schedule was paused for 31 days: events no longer reach back
            tx.set_cursor(customers.key, str(int(time.time()) - 31 * 86400), "old")
        report = sync_stream(customers, connection.client("billing_source"), warehouse, run_id="relist")
    assert report.deleted == 1
    assert warehouse.raw_records(customers.raw_table)[victim]["is_deleted"] is True


# ---------------------------------------------------------------------- one bad record never stops a stream


class _Answer:
    def __init__(self, body) -> None:
        self.body = body


class _FakeHubSpot:
    """Search hits as given; reading one back by id fails the way the client or vendor would for that id."""

    def __init__(self, hits: list) -> None:
        self.hits = hits

    def call(self, operation, object_type, method, template, *, path_params=None, record_id=None, **_):
        from integration_assets.core.access import unsafe_segment
        from integration_assets.core.errors import Category, IntegrationError, Resource

        if template.endswith("/search"):
            return _Answer({"results": self.hits, "paging": None})
        record_id = str(path_params["record_id"])
        failures = {"gone": Category.NOT_FOUND, "refused": Category.REJECTED_VALUE, "flaky": Category.TRANSIENT}
        category = Category.PERMISSION_DENIED if unsafe_segment(record_id) else failures.get(record_id)
        if category is not None:
            raise IntegrationError(category, "no", Resource("crm", f"{method} {template}"), "none")
        return _Answer({"id": record_id, "updatedAt": "2026-01-01T00:00:00Z", "properties": {}})


def _deal(record_id, modified="2026-01-01T00:00:00Z") -> dict:
    hit = {"properties": {"hs_lastmodifieddate": modified}}
    return hit if record_id is None else {"id": record_id, **hit}


def test_a_deal_that_cannot_be_read_back_is_quarantined_alone() -> None:
    from integration_assets.core.warehouse.rows import MALFORMED_RECORD, screen
    from integration_assets.systems.crm.streams import STREAMS

    deals = next(stream for stream in STREAMS if stream.object_type == "deals")
    hits = [_deal("1"), _deal("../contacts/7"), _deal("refused"), _deal(None), _deal("gone"), _deal("2", 1700)]
    rows, cursor = next(deals._changed_pages(_FakeHubSpot(hits), since_ms=10**12))
    screened = screen(rows)
    assert sorted(row.id for row in screened.rows) == ["1", "2"]  # a non-string last change counts as 0
    held = {r.id: r for r in screened.rejected}
    assert set(held) - {"../contacts/7", "refused"} == {next(i for i in held if i.startswith("<no id "))}
    assert {r.reason_code for r in held.values()} == {MALFORMED_RECORD}
    assert "permission_denied" in held["../contacts/7"].detail and "contacts/7" not in held["../contacts/7"].detail
    assert "rejected_value" in held["refused"].detail
    assert int(cursor) >= 10**12
    with pytest.raises(IntegrationError) as raised:  # a retryable failure still stops the page, to be retried
        next(deals._changed_pages(_FakeHubSpot([_deal("flaky")]), since_ms=10**12))
    assert raised.value.category == Category.TRANSIENT


class _FakeStripe:
    def __init__(self, events: list) -> None:
        self.events = events

    def call(self, *args, **kwargs):
        return _Answer({"data": self.events, "has_more": False})


def test_a_malformed_stripe_event_is_quarantined_not_retried() -> None:
    from integration_assets.core.warehouse.rows import MALFORMED_RECORD, screen
    from integration_assets.systems.billing.streams import STREAMS

    customers = next(stream for stream in STREAMS if stream.object_type == "customers")

    def event(number: int, created, snapshot) -> dict:
        return {"id": f"evt_{number}", "type": "customer.updated", "created": created, "data": {"object": snapshot}}

    good = {"id": "cus_1", "object": "customer"}
    events = [
        event(1, 1_800_000_100, good),
        event(2, "soon", {"id": "cus_2", "object": "customer"}),  # unreadable time, readable id
        event(3, 1_800_000_050, ["not", "an", "object"]),  # no id at all: a stand-in, never skipped
        {"id": "evt_4", "created": 1_800_000_040},  # no data
        event(5, 1_800_000_030, {"object": "customer"}),  # an object without its id
    ]
    chunks = list(customers._events(_FakeStripe(events), since_s=1_800_000_000))
    rows = [row for chunk in chunks for row in chunk.rows]
    screened = screen(rows)
    assert [row.id for row in screened.rows] == ["cus_1"]
    assert len(screened.rejected) == 4 and {r.reason_code for r in screened.rejected} == {MALFORMED_RECORD}
    assert "cus_2" in {r.id for r in screened.rejected}
    assert sum(r.id.startswith("<no id ") for r in screened.rejected) == 3
    assert all("soon" not in r.detail for r in screened.rejected)
    assert chunks[-1].cursor == "1800000100"
