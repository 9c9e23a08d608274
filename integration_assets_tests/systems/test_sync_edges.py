"""Edges found in review: records edited while a search is read, and deletes seen only by a re-list."""

from __future__ import annotations

import time

import requests

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
