"""The alert sensors driven as Dagster drives them: materialize, evaluate a tick, pass its cursor to the next.

Each test runs on a SQLite instance with a DuckDB warehouse and on a PostgreSQL instance (dagster-postgres)
with a PostgreSQL warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    SensorDefinition,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    job,
    materialize,
    op,
)

from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import load_alerts
from integration_assets.monitoring.evidence import check_result
from integration_assets.monitoring.sensors import (
    CHECK_FAMILIES,
    OTHER_CHECKS,
    drift_alerts,
    failed_check_alerts,
    failed_run_alerts,
    family_of,
    sensors,
)
from integration_assets_tests.test_alerts import WebhookReceiver, read_lines, write_monitoring

STATE = Path()  # set per test: the file whose content ("pass"/"fail") decides the probe's outcome


def _failing() -> bool:
    return STATE.read_text().strip() == "fail"


@asset(key=["crm", "probe"])
def probe() -> int:
    return 1


@asset_check(asset=probe, name="schema_drift")
def probe_drift():
    failing = _failing()
    return check_result(
        passed=not failing,
        system="crm",
        summary=(
            f"{STATE.stat().st_mtime_ns % 7 + 1} fields drifted; reported by ops.lead@example.com with token=s3cr3t"
            if failing
            else "no drift"
        ),
        next_action="Compare the vendor's fields with the raw contract; Bearer abc.def leaked here",
        records=[{"id": "c-1"}, {"id": "c-2"}] if failing else [],
        counts={"fields_new": 1, "fields_removed": 1},
        severity=AssetCheckSeverity.WARN,
    )


@op
def flaky_step() -> None:
    if _failing():
        raise RuntimeError("vendor answered 503 for jane@example.com")


@job
def nightly_probe() -> None:
    flaky_step()


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """An instance, a warehouse URL of the same kind, a webhook receiver, and a config sending to both sinks."""
    global STATE
    STATE = tmp_path / "state"
    STATE.write_text("pass")
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("TEST_ALERT_HOOK", receiver.url)
        config = [{"kind": "jsonl", "path": "alerts.jsonl"}, {"kind": "webhook", "url_env": "TEST_ALERT_HOOK"}]
        monkeypatch.setenv("MONITORING_CONFIG", str(write_monitoring(tmp_path / "monitoring.yaml", config)))
        if request.param == "sqlite":
            warehouse_url = str(tmp_path / "warehouse.duckdb")
            (tmp_path / "dagster_home").mkdir()
            context = instance_for_test(temp_dir=str(tmp_path / "dagster_home"))
        else:
            warehouse_url = request.getfixturevalue("postgres_url")
            # SQLAlchemy 2.1 needs the driver named in the URL (as dagster.yaml does with `scheme`)
            storage_url = warehouse_url.replace("postgresql://", "postgresql+psycopg2://", 1)
            context = instance_for_test(overrides={"storage": {"postgres": {"postgres_url": storage_url}}})
        with context as instance:
            yield {
                "instance": instance,
                "warehouse_url": warehouse_url,
                "receiver": receiver,
                "lines": Path(instance.root_directory) / "alerts.jsonl",
            }


def tick(sensor: SensorDefinition, setup: dict, cursor: str | None) -> str | None:
    """One sensor tick as the daemon runs it; returns the cursor for the next one."""
    context = build_sensor_context(
        instance=setup["instance"],
        cursor=cursor,
        resources={"warehouse": WarehouseResource(url=setup["warehouse_url"])},
    )
    return sensor.evaluate_tick(context).cursor


def check_once(instance: DagsterInstance, outcome: str) -> None:
    STATE.write_text(outcome)
    assert materialize([probe, probe_drift], instance=instance).success


def test_failed_check_alerts_once_and_recovers_once(setup: dict) -> None:
    instance, receiver, lines = setup["instance"], setup["receiver"], setup["lines"]
    cursor = tick(drift_alerts, setup, None)

    check_once(instance, "fail")
    cursor = tick(drift_alerts, setup, cursor)
    assert [line["notice"] for line in read_lines(lines)] == ["opened"]
    assert [body["notice"] for body in receiver.bodies] == ["opened"]
    opened = receiver.bodies[0]
    assert opened["severity"] == "WARNING" and opened["owner"] == "revenue-operations"
    assert opened["problem_key"] == "check:crm/probe:schema_drift" and opened["family"] == "drift"
    assert opened["evidence"]["sample_ids"] == ["c-1", "c-2"]
    assert opened["evidence"]["counts"] == {"problems": 2, "fields_new": 1, "fields_removed": 1}
    sent = json.dumps(read_lines(lines)) + json.dumps(receiver.bodies)
    for secret in ("ops.lead@example.com", "s3cr3t", "abc.def"):
        assert secret not in sent

    # still failing, twice, with different evidence: silence
    check_once(instance, "fail")
    check_once(instance, "fail")
    cursor = tick(drift_alerts, setup, cursor)
    cursor = tick(drift_alerts, setup, cursor)
    assert len(read_lines(lines)) == 1 and len(receiver.bodies) == 1

    before_recovery = cursor
    check_once(instance, "pass")
    cursor = tick(drift_alerts, setup, cursor)
    assert [line["notice"] for line in read_lines(lines)] == ["opened", "resolved"]
    assert [body["notice"] for body in receiver.bodies] == ["opened", "resolved"]

    # nothing new; and the same evaluations processed again (an old cursor): no duplicate
    tick(drift_alerts, setup, cursor)
    tick(drift_alerts, setup, before_recovery)
    tick(drift_alerts, setup, None)
    assert len(read_lines(lines)) == 2 and len(receiver.bodies) == 2

    # the drift check belongs to the drift sensor only
    tick(failed_check_alerts, setup, None)
    assert len(receiver.bodies) == 2

    (row,) = load_alerts(Warehouse.from_url(setup["warehouse_url"]))
    assert row["status"] == "resolved" and row["pending"] is False
    evaluations = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        dagster_event_type=DagsterEventType.ASSET_CHECK_EVALUATION
    )
    failing = [e for e in evaluations.values() if not e.dagster_event.asset_check_evaluation_data.passed]
    assert len(failing) == 3
    assert row["opened_at"].timestamp() == pytest.approx(failing[0].timestamp, abs=1e-3)  # since the first failure
    assert row["resolved_at"].timestamp() > failing[-1].timestamp


def test_webhook_down_then_up_gets_each_notice_once(setup: dict) -> None:
    instance, receiver, lines = setup["instance"], setup["receiver"], setup["lines"]
    cursor = tick(drift_alerts, setup, None)
    receiver.statuses = [500, 500, 500]  # every attempt of the first tick fails
    check_once(instance, "fail")
    cursor = tick(drift_alerts, setup, cursor)  # must not raise
    assert receiver.bodies == [] and len(read_lines(lines)) == 1
    assert json.loads(cursor)["pending"] is True

    receiver.statuses = [500]  # then 200: the retry within the next tick gets through
    cursor = tick(drift_alerts, setup, cursor)
    assert [body["notice"] for body in receiver.bodies] == ["opened"]
    assert json.loads(cursor)["pending"] is False
    cursor = tick(drift_alerts, setup, cursor)
    assert len(receiver.bodies) == 1 and len(read_lines(lines)) == 1


def test_failed_run_alerts_once_and_recovers(setup: dict) -> None:
    instance, receiver = setup["instance"], setup["receiver"]
    cursor = tick(failed_run_alerts, setup, None)

    STATE.write_text("fail")
    assert not nightly_probe.execute_in_process(instance=instance, raise_on_error=False).success
    cursor = tick(failed_run_alerts, setup, cursor)
    assert [body["notice"] for body in receiver.bodies] == ["opened"]
    alert = receiver.bodies[0]
    assert alert["job"] == "nightly_probe" and alert["severity"] == "CRITICAL"
    assert alert["evidence"]["failed_steps"] == ["flaky_step"]
    assert "vendor answered 503" in alert["summary"] and "jane@example.com" not in alert["summary"]

    assert not nightly_probe.execute_in_process(instance=instance, raise_on_error=False).success
    cursor = tick(failed_run_alerts, setup, cursor)
    assert len(receiver.bodies) == 1

    STATE.write_text("pass")
    assert nightly_probe.execute_in_process(instance=instance).success
    cursor = tick(failed_run_alerts, setup, cursor)
    assert [body["notice"] for body in receiver.bodies] == ["opened", "resolved"]
    assert receiver.bodies[1]["resolved_run_id"] != alert["opened_run_id"]
    tick(failed_run_alerts, setup, cursor)
    assert len(receiver.bodies) == 2


def test_every_check_name_has_exactly_one_sensor() -> None:
    expected = {
        "drift": ["drift", "volume", "schema_drift"],
        "missing_records": [
            "complete_against_vendor",
            "won_deals_invoiced",
            "invoices_paid_by_payments",
            "customer_master_agrees",
            "tickets_known_people",
        ],
        "connector_health": ["connector_health_crm", "downtime_billing", "credential_expiry"],
        "traffic": ["traffic_support"],
        OTHER_CHECKS: ["contract", "accounting_balances"],
    }
    assert {name: family_of(name) for names in expected.values() for name in names} == {
        name: family for family, names in expected.items() for name in names
    }
    names = [s.name for s in sensors]
    assert len(names) == len(set(names)) == len(CHECK_FAMILIES) + 2
