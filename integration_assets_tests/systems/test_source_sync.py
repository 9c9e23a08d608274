"""Drills: the nine source assets against a faulty sandbox, on DuckDB and on PostgreSQL.

Every raw table must end equal to what the sandbox holds: none missing, none doubled, none stale.
"""

from __future__ import annotations

import requests
from dagster import DagsterInstance, materialize

from integration_assets.core.warehouse import Warehouse
from integration_assets_tests.testing.sandbox import put_faults
from integration_assets_tests.testing.sync import SOURCES, differences, materialized, resources
from integration_sandbox.clients import session
from integration_sandbox.server import Sandbox

BAD_DAY = """
seed: {seed}
default:
  rates: {{429: 0.04, 500: 0.04, 502: 0.03, 503: 0.03, timeout: 0.02, reset: 0.02, malformed: 0.02}}
  timeout_hold_s: 1.0
zendesk:
  incremental_lag_s: 0
"""


def faults_served(sandbox: Sandbox) -> int:
    stats = requests.get(f"{sandbox.url('hubspot')}/__sandbox__/stats", timeout=5).json()
    return sum(n for counts in stats.values() for kind, n in counts.items() if kind.startswith("fault:"))


def change_things_in_the_sandbox(sandbox: Sandbox) -> None:
    """What people do in the vendors' UIs between two syncs: edit, create, archive, delete."""
    changes = [
        ("hubspot", "contacts", 15, 3),
        ("hubspot", "companies", 5, 1),
        ("hubspot", "deals", 8, 1),
        ("stripe", "customers", 6, 2),
        ("stripe", "invoices", 6, 0),
        ("stripe", "charges", 4, 0),
        ("zendesk", "organizations", 4, 1),
        ("zendesk", "users", 6, 2),
        ("zendesk", "tickets", 10, 3),
    ]
    for seed, (vendor, object_type, edits, deletions) in enumerate(changes):
        answer = requests.post(
            f"{sandbox.url(vendor)}/__sandbox__/mutate",
            json={"object_type": object_type, "count": edits, "delete": deletions, "seed": seed},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["changed"]) == edits
    created = session("hubspot").post(
        f"{sandbox.url('hubspot')}/crm/v3/objects/contacts",
        json={"properties": {"email": "new.person@drill.example", "firstname": "New"}},
        timeout=5,
    )
    assert created.status_code == 201, created.text
    ticket = session("zendesk").post(
        f"{sandbox.url('zendesk')}/api/v2/tickets.json",
        json={"ticket": {"subject": "Drill", "comment": {"body": "hello"}, "requester_id": 370000001}},
        timeout=5,
    )
    assert ticket.status_code == 201, ticket.text


def test_full_then_incremental_sync_under_twenty_percent_faults(sandbox: Sandbox, warehouse_url: str) -> None:
    put_faults(sandbox, BAD_DAY.format(seed=5))
    with DagsterInstance.ephemeral() as instance:
        first = materialize(SOURCES, resources=resources(sandbox, warehouse_url), instance=instance)
        assert first.success
        warehouse = Warehouse.from_url(warehouse_url)
        assert differences(sandbox, warehouse) == {}
        modes = {key: m["mode"].value for key, m in materialized(first).items()}
        assert set(modes.values()) == {"full"}

        change_things_in_the_sandbox(sandbox)
        second = materialize(SOURCES, resources=resources(sandbox, warehouse_url), instance=instance)
        assert second.success
        assert differences(sandbox, warehouse) == {}
        metadata = materialized(second)
        # A full refresh is one config switch away, and lands the same records again.
        run_config = {"ops": {key.replace("/", "__"): {"config": {"full_refresh": True}} for key in metadata}}
        third = materialize(
            SOURCES, resources=resources(sandbox, warehouse_url), instance=instance, run_config=run_config
        )
        assert {m["mode"].value for m in materialized(third).values()} == {"full"}
        assert differences(sandbox, warehouse) == {}
    assert {m["mode"].value for m in metadata.values()} == {"incremental"}
    assert metadata["crm/contacts"]["inserted"].value >= 1 and metadata["crm/contacts"]["updated"].value >= 15
    assert metadata["support/tickets"]["deleted"].value >= 3
    assert metadata["support/organizations"]["deleted"].value == 1  # Zendesk's export reports it with deleted_at
    # Every fault the sandbox injected is a failed attempt in the call log, and nothing else failed.
    failed = warehouse.query("SELECT count(*) FROM ops.api_calls WHERE error_category IS NOT NULL")[0][0]
    assert failed == faults_served(sandbox) > 0
    total_rows = warehouse.query("SELECT count(*) FROM ops.api_calls")[0][0]
    assert total_rows > failed


def _run_log(instance: DagsterInstance, run_id: str) -> str:
    return "\n".join(
        str(entry.user_message) + " " + str(entry.dagster_event.event_specific_data if entry.dagster_event else "")
        for entry in instance.all_logs(run_id)
    )


def test_expired_token_fails_fast_and_keeps_the_cursor(sandbox: Sandbox, warehouse_url: str) -> None:
    put_faults(sandbox, "hubspot:\n  credentials:\n    - {token: pat-old, expires_in_s: 0}\n")
    contacts = [a for a in SOURCES if a.key.to_user_string() == "crm/contacts"]
    with DagsterInstance.ephemeral() as instance:
        assert materialize(contacts, resources=resources(sandbox, warehouse_url), instance=instance).success
        warehouse = Warehouse.from_url(warehouse_url)
        cursor = warehouse.cursor("crm/contacts")
        assert cursor is not None
        change_things_in_the_sandbox(sandbox)
        requests.delete(f"{sandbox.url('hubspot')}/__sandbox__/stats", timeout=5)

        expired = resources(sandbox, warehouse_url, hubspot={"access_token": "pat-old"})
        result = materialize(contacts, resources=expired, instance=instance, raise_on_error=False)
        assert not result.success
        log = _run_log(instance, result.run_id)
    assert "auth_expired HTTP 401 [EXPIRED_AUTHENTICATION]" in log
    assert "Next action: refresh or rotate HUBSPOT_ACCESS_TOKEN" in log
    assert "pat-old" not in log
    served = requests.get(f"{sandbox.url('hubspot')}/__sandbox__/stats", timeout=5).json()["hubspot"]
    assert served["requests"] == served["status:401"] == 1, "no retry: not by the client, not by Dagster"
    assert warehouse.cursor("crm/contacts") == cursor


def test_missing_permission_fails_fast_naming_it(sandbox: Sandbox, warehouse_url: str) -> None:
    put_faults(sandbox, "stripe:\n  credentials:\n    - {token: rk_test_narrow, scopes: ['customers:read']}\n")
    invoices = [a for a in SOURCES if a.key.to_user_string() == "billing/invoices"]
    narrow = resources(sandbox, warehouse_url, stripe={"api_key": "rk_test_narrow"})
    with DagsterInstance.ephemeral() as instance:
        result = materialize(invoices, resources=narrow, instance=instance, raise_on_error=False)
        assert not result.success
        log = _run_log(instance, result.run_id)
    assert "permission_denied HTTP 403" in log
    assert "'rak_invoice_read' permission" in log
    served = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5).json()["stripe"]
    assert served["requests"] == 1
    assert Warehouse.from_url(warehouse_url).cursor("billing/invoices") is None


def test_more_than_ten_thousand_changes_restart_the_search(sandbox: Sandbox, tmp_path) -> None:
    """HubSpot refuses to page past 10,000 search results: the stream restarts from the last change seen."""
    from integration_assets.core.sync import sync_stream
    from integration_assets.systems import CATALOG

    contacts = CATALOG.stream("crm/contacts")
    warehouse = Warehouse.from_url(str(tmp_path / "w.duckdb"))
    warehouse.ensure_ops_tables()
    client = resources(sandbox, warehouse.target)["hubspot"].client("crm_source")
    assert sync_stream(contacts, client, warehouse, run_id="full").mode == "full"
    http = session("hubspot")
    for batch in range(103):  # 10,300 new contacts, created after the cursor
        inputs = [{"properties": {"email": f"bulk{batch}-{i}@bulk.example", "firstname": "Bulk"}} for i in range(100)]
        answer = http.post(f"{sandbox.url('hubspot')}/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
        assert answer.status_code in (200, 201), answer.text
    report = sync_stream(contacts, client, warehouse, run_id="incremental")
    assert report.mode == "incremental" and report.inserted == 10_300
    searches = warehouse.query("SELECT count(*) FROM ops.api_calls WHERE endpoint LIKE '%/search' AND status = 400")
    assert searches == [(0,)], "the cap was never hit: the stream restarted before it"
    assert differences(sandbox, warehouse, streams=[contacts]) == {}
