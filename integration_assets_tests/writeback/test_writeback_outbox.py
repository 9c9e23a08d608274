"""The outage drill: billing down for a whole run, every write waits in the outbox; billing back, the replay
sensor asks for the flow, each write is delivered exactly once, the downtime alert has fired once and recovered
once, and after a re-sync the reconciliation checks agree. On both warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.sensors import failed_check_alerts
from integration_assets.reconciliation.definitions import cross_system_checks
from integration_assets.systems import CATALOG
from integration_assets.writeback import outbox
from integration_assets.writeback.model import Outcome, PlannedWrite, Status
from integration_assets.writeback.sensors import sensors as writeback_sensors
from integration_assets_tests.testing.alerts import read_lines, write_monitoring
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults, sandbox_records
from integration_assets_tests.testing.sync import SOURCES, checked_sources, resources
from integration_assets_tests.testing.writeback import (
    EVERYTHING,
    HUBSPOT_HEADERS,
    customers_per_company,
    invoices_per_deal,
    new_business,
    run_flows,
    sync,
    table,
    value,
    write_settings,
)
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

FLOW = "crm_to_billing"
(outbox_replay,) = writeback_sensors
COMPLETE = "complete_against_vendor"  # runs in each stream's own step
reconciliation_checks = [
    *(key for step in cross_system_checks for key in step.check_keys),
    *(AssetCheckKey(stream.asset_key, COMPLETE) for stream in CATALOG.streams),
]


def outbox_checks(result) -> list[bool]:
    return [e.passed for e in result.get_asset_check_evaluations() if e.check_name == "outbox_drained"]


def test_destination_down_then_back_delivers_each_write_once(
    tmp_path: Path, warehouse_url: str, config_dir: Path
) -> None:
    write_settings(config_dir / "writeback.yaml", retry_base_seconds=0.01)
    write_monitoring(config_dir / "monitoring.yaml", [{"kind": "jsonl", "path": "alerts.jsonl"}])
    data = tmp_path / "data"
    generate(data, seed=5, scale=25, defect_rate=0.0)  # a clean business: every check can pass
    (tmp_path / "home").mkdir()
    with Sandbox(data, ports=FREE_PORTS) as sandbox, instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        alerts = Path(instance.root_directory) / "alerts.jsonl"

        def alert_tick(cursor: str | None) -> str | None:
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource(url=warehouse_url)}
            )
            return failed_check_alerts.evaluate_tick(context).cursor

        made = new_business(sandbox, companies=4, deals_each=2, prefix="Outage")
        sync(sandbox, warehouse_url, instance)
        cursor = alert_tick(None)

        # billing down for the whole run: nothing reaches Stripe, everything waits with its key
        put_faults(sandbox, "seed: 3\nstripe:\n  rates: {503: 1.0}\n")
        requests.delete(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5)
        down, metadata = run_flows(sandbox, warehouse_url, instance, FLOW)
        stripe = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5).json()["stripe"]
        assert value(metadata[FLOW], "queued") == value(metadata[FLOW], "writes") == 4 + 8
        assert value(metadata[FLOW], "circuit_open") is True and value(metadata[FLOW], "outbox_pending") == 12
        assert stripe["requests"] <= 3 * 12  # the circuit opened after 3 failed calls (12 attempts each)
        assert outbox_checks(down) == [False]
        waiting = table(warehouse_url, "SELECT * FROM ops.outbox WHERE status = 'pending'")
        assert len(waiting) == 12 and len({w["idempotency_key"] for w in waiting}) == 12
        assert not customers_per_company(sandbox).keys() & made.keys()
        cursor = alert_tick(cursor)
        # still down on the next run: the writes stay queued once each, and the alert does not repeat
        down_again, _ = run_flows(sandbox, warehouse_url, instance, FLOW)
        assert outbox_checks(down_again) == [False]
        assert len(table(warehouse_url, "SELECT * FROM ops.outbox")) == 12
        cursor = alert_tick(cursor)

        # billing back: the sensor asks for the flow, whose run replays the outbox first
        put_faults(sandbox, "seed: 3\n")
        context = build_sensor_context(
            instance=instance,
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
            definitions=Definitions(
                assets=EVERYTHING, sensors=[outbox_replay], resources=resources(sandbox, warehouse_url)
            ),
        )
        (request,) = outbox_replay.evaluate_tick(context).run_requests
        assert request.asset_selection == [AssetKey(["writeback", FLOW])]
        replay = materialize(
            EVERYTHING,
            selection=request.asset_selection,
            resources=resources(sandbox, warehouse_url),
            instance=instance,
            tags=request.tags,
        )
        assert replay.success and outbox_checks(replay) == [True]
        cursor = alert_tick(cursor)

        invoices, customers = invoices_per_deal(sandbox), customers_per_company(sandbox)
        assert all(invoices[d] == 1 for deals in made.values() for d in deals)
        assert all(customers[c] == 1 for c in made)
        outbox = table(warehouse_url, "SELECT status, outcome FROM ops.outbox")
        assert sorted({(o["status"], o["outcome"]) for o in outbox}) == [("delivered", "created")]
        replayed = table(warehouse_url, "SELECT * FROM ops.sync_log WHERE replayed AND status = 'created'")
        assert len(replayed) == len({r["idempotency_key"] for r in replayed}) == 12  # each once, with its key
        assert {w["idempotency_key"] for w in waiting} == {r["idempotency_key"] for r in replayed}
        opened = [line for line in read_lines(alerts) if "outbox_drained" in line["problem_key"]]
        assert [line["notice"] for line in opened] == ["opened", "resolved"]

        # both sides agree once the sources are read again
        sync(sandbox, warehouse_url, instance)
        result = materialize(
            [*checked_sources(COMPLETE), *(a for a in EVERYTHING if a not in SOURCES), *cross_system_checks],
            selection=AssetSelection.checks(*reconciliation_checks),
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(reconciliation_checks)
    for evaluation in evaluations:
        assert evaluation.passed, (evaluation.check_name, evaluation.metadata["summary"].value)


def test_a_waiting_write_the_source_has_since_changed_is_superseded_not_replayed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = str(tmp_path / "wh.duckdb")
    made = new_business(sandbox, companies=1, deals_each=1, prefix="Stale")
    ((company, (deal,)),) = made.items()
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        put_faults(sandbox, "seed: 3\nstripe:\n  rates: {503: 1.0}\n")
        run_flows(sandbox, url, instance, FLOW)
        waiting = table(url, "SELECT * FROM ops.outbox WHERE record_id = ? AND status = 'pending'", [f"crm:{deal}"])
        assert len(waiting) == 1 and waiting[0]["payload"]["amount"] == 100000
        # billing back; meanwhile the salesperson corrects the deal's amount, and the warehouse is synced
        put_faults(sandbox, "seed: 3\n")
        patched = requests.patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/deals/{deal}",
            json={"properties": {"amount": "2000.00"}},
            headers=HUBSPOT_HEADERS,
            timeout=5,
        )
        assert patched.status_code == 200
        sync(sandbox, url, instance)
        run_flows(sandbox, url, instance, FLOW)
    (invoice,) = [
        i for i in sandbox_records(sandbox, "stripe", "invoices") if i["metadata"].get("hubspot_deal_id") == deal
    ]
    assert invoice["total"] == 200000 and invoice["status"] == "open"  # the fresh amount, never the stale one
    rows = {
        r["idempotency_key"]: r
        for r in table(url, "SELECT * FROM ops.outbox WHERE record_id IN (?, ?)", [f"crm:{deal}", f"crm:{company}"])
    }
    assert (rows[waiting[0]["idempotency_key"]]["status"], rows[waiting[0]["idempotency_key"]]["outcome"]) == (
        "cancelled",
        "superseded",
    )
    assert {(r["record_id"], r["status"]) for r in rows.values()} == {
        (f"crm:{deal}", "cancelled"),
        (f"crm:{company}", "delivered"),  # the customer's write is the same: delivered once, as planned
    }
    assert customers_per_company(sandbox)[company] == 1 and invoices_per_deal(sandbox)[deal] == 1


def test_one_pending_row_per_key(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    outbox.ensure_table(warehouse)
    write = PlannedWrite(FLOW, "billing", "invoices", "crm:1", "create", {"amount": 1}, "ia:k", "crm:1", "crm/deals/1")
    waiting = Outcome(write, Status.QUEUED, detail="circuit open")
    with warehouse.transaction() as tx:
        assert outbox.queue(tx, waiting, run_id="r1", base_s=1, cap_s=2)
        assert not outbox.queue(tx, waiting, run_id="r2", base_s=1, cap_s=2)  # the code never queues it twice
    row = {**table(warehouse_url, "SELECT * FROM ops.outbox")[0], "outbox_id": "another"}
    with pytest.raises(Exception, match=r"(?i)duplicate|unique|constraint"), warehouse.transaction() as tx:
        tx.append("ops.outbox", [row])  # nor can anything else: the index refuses a second pending row
    (item,) = outbox.pending(warehouse, FLOW)
    with warehouse.transaction() as tx:
        outbox.finish(tx, item, Outcome(write, Status.CREATED, destination_id="in_1"), run_id="r3")
        assert outbox.queue(tx, waiting, run_id="r4", base_s=1, cap_s=2)  # finished rows do not count
    assert len(outbox.pending(warehouse, FLOW)) == 1
