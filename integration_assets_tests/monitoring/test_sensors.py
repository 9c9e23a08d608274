"""The alert sensors driven as Dagster drives them: materialize, evaluate a tick, pass its cursor to the next.

Each test runs on a SQLite instance (the default, run-sharded storage) with a DuckDB warehouse and on a
PostgreSQL instance (dagster-postgres) with a PostgreSQL warehouse. Freshness state changes are recorded as
the freshness daemon records them (`test_freshness_drill.py` runs the real daemon).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AutomationConditionSensorDefinition,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EventLogEntry,
    SensorDefinition,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    job,
    materialize,
    op,
)

from integration_assets.core.dagster_adapter import (
    DagsterEvent,
    FreshnessState,
    FreshnessStateChange,
    StepMaterializationData,
)
from integration_assets.core.evidence import check_result
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.definitions import defs
from integration_assets.monitoring.alerts import load_alerts
from integration_assets.monitoring.sensors import (
    CHECK_FAMILIES,
    FRESHNESS,
    OPS_ALERTS,
    OTHER_CHECKS,
    RUNS,
    SENSOR_FAMILIES,
    drift_alerts,
    failed_check_alerts,
    failed_run_alerts,
    family_of,
    freshness_alerts,
    sensors,
)
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.alerts import WebhookReceiver, read_lines, write_monitoring

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


@job(tags={"integration/flow": "probe", "system/billing": "true"})  # as core.automation.flow_tags tags jobs
def nightly_probe() -> None:
    flaky_step()


@asset(key=["probe_flaky"], op_tags={"system": "support"})  # as source assets carry their system
def probe_flaky() -> int:
    if _failing():
        raise RuntimeError("vendor answered 503")
    return 1


@asset(key=["probe_steady"])
def probe_steady() -> int:
    return 1


UI_ASSETS = Definitions(assets=[probe_flaky, probe_steady])


@pytest.fixture(params=["sqlite", "postgres"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict]:
    """An instance, a warehouse URL of the same kind, a webhook receiver, and a config sending to both sinks."""
    global STATE
    STATE = tmp_path / "state"
    STATE.write_text("pass")
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("TEST_ALERT_HOOK", receiver.url)
        config = [{"kind": "jsonl", "path": "alerts.jsonl"}, {"kind": "webhook", "url_env": "TEST_ALERT_HOOK"}]
        write_monitoring(config_dir / "monitoring.yaml", config)
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


def evaluate(sensor: SensorDefinition, setup: dict, cursor: str | None):
    """One sensor tick as the daemon runs it: its cursor, skip message, and the asset events it reports."""
    context = build_sensor_context(
        instance=setup["instance"],
        cursor=cursor,
        resources={"warehouse": WarehouseResource(url=setup["warehouse_url"])},
    )
    return sensor.evaluate_tick(context)


def tick(sensor: SensorDefinition, setup: dict, cursor: str | None) -> str | None:
    """One sensor tick; returns the cursor for the next one."""
    return evaluate(sensor, setup, cursor).cursor


def ops_alerts_report(result) -> dict:
    """The `ops/alerts` materialization a tick reported, as plain values; {} when it reported none."""
    reported = [event for event in result.asset_events if event.asset_key == OPS_ALERTS]
    if not reported:
        return {}
    (event,) = reported
    return {name: value.value for name, value in event.metadata.items()}


def check_once(instance: DagsterInstance, outcome: str) -> None:
    STATE.write_text(outcome)
    assert materialize([probe, probe_drift], instance=instance).success


def test_failed_check_alerts_once_and_recovers_once(setup: dict) -> None:
    instance, receiver, lines = setup["instance"], setup["receiver"], setup["lines"]
    cursor = tick(drift_alerts, setup, None)

    check_once(instance, "fail")
    result = evaluate(drift_alerts, setup, cursor)
    cursor = result.cursor
    assert [line["notice"] for line in read_lines(lines)] == ["opened"]
    assert [body["notice"] for body in receiver.bodies] == ["opened"]
    # the tick reports the open alerts as the ops/alerts asset, and its message still says what it did
    report = ops_alerts_report(result)
    assert report["open_count"] == report["dagster/row_count"] == 1
    (row,) = report["open_alerts"].records
    assert row.data["problem"] == "check:crm/probe:schema_drift" and row.data["severity"] == "WARNING"
    assert row.data["owner"] == "revenue-operations" and row.data["opened_at"].endswith("UTC")
    assert "webhook:json:TEST_ALERT_HOOK" in row.data["notified"] and "(pending)" not in row.data["notified"]
    assert {c.name for c in report["open_alerts"].schema.columns} >= {"problem", "severity", "opened_at", "owner"}
    assert "1 opened" in result.skip_message
    opened = receiver.bodies[0]
    assert opened["severity"] == "WARNING" and opened["owner"] == "revenue-operations"
    assert opened["problem_key"] == "check:crm/probe:schema_drift" and opened["family"] == "drift"
    assert opened["evidence"]["sample_ids"] == ["c-1", "c-2"]
    assert opened["evidence"]["counts"] == {"problems": 2, "fields_new": 1, "fields_removed": 1}
    sent = json.dumps(read_lines(lines)) + json.dumps(receiver.bodies)
    for secret in ("ops.lead@example.com", "s3cr3t", "abc.def"):
        assert secret not in sent

    # still failing, twice, with different evidence: silence, and no new report
    check_once(instance, "fail")
    check_once(instance, "fail")
    result = evaluate(drift_alerts, setup, cursor)
    assert ops_alerts_report(result) == {} and "0 opened" in result.skip_message
    cursor = tick(drift_alerts, setup, result.cursor)
    assert len(read_lines(lines)) == 1 and len(receiver.bodies) == 1

    before_recovery = cursor
    check_once(instance, "pass")
    result = evaluate(drift_alerts, setup, cursor)
    cursor = result.cursor
    assert ops_alerts_report(result)["open_count"] == 0
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
    evaluations = instance.event_log_storage.get_logs_for_all_runs_by_log_id(  # the test may read internals
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
    # the run's `system/<role>: "true"` tag names the system, and so the owner
    assert (alert["system"], alert["owner"]) == ("billing", "finance-operations")
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
    """Every asset check of the code location belongs to exactly one family, watched by exactly one sensor."""
    names = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    expected = {  # the known kinds of check, by name prefix → family
        "drift": "drift",
        "volume": "drift",
        "complete_against_vendor": "missing_records",
        "won_deals_invoiced": "missing_records",
        "invoices_paid_by_payments": "missing_records",
        "customer_master_agrees": "missing_records",
        "tickets_known_people": "missing_records",
        "connector_health_": "connector_health",
        "downtime_": "connector_health",
        "credential_expiry_": "connector_health",
        "traffic_": "traffic",
        "contract": OTHER_CHECKS,
        "accounting_balances": OTHER_CHECKS,
    }
    for prefix in expected:  # each known kind is in the Definitions (a renamed check must be noticed here)
        assert any(name.startswith(prefix) for name in names), prefix
    assert {f"credential_expiry_{role}" for role in ("crm", "billing", "support")} <= names
    watched = {
        family: [s for s, families in SENSOR_FAMILIES.items() if family in families] for family in CHECK_FAMILIES
    }
    watched[OTHER_CHECKS] = [s for s, families in SENSOR_FAMILIES.items() if OTHER_CHECKS in families]
    for name in sorted(names):
        matching = [family for family, pattern in CHECK_FAMILIES.items() if pattern.search(name)]
        assert len(matching) <= 1, f"{name} matches the families {matching}: it would alert twice or by order"
        family = family_of(name)
        known = [want for prefix, want in expected.items() if name.startswith(prefix)]
        if known:
            assert family == known[0], name
        assert len(watched[family]) == 1, f"{name} ({family}) is watched by {watched[family]}"
    assert sorted(SENSOR_FAMILIES) == sorted(s.name for s in sensors)
    every_family = [*CHECK_FAMILIES, OTHER_CHECKS, RUNS, FRESHNESS]
    assert sorted(f for fs in SENSOR_FAMILIES.values() for f in fs) == sorted(every_family)
    sensor_names = [s.name for s in sensors]
    assert len(sensor_names) == len(set(sensor_names)) == len(CHECK_FAMILIES) + 3
    # one freshness mechanism: the policies, judged by the freshness daemon; no last-update checks, no sensor
    assert not any("freshness" in name for name in names)
    assert "freshness_checks_sensor" not in {s.name for s in defs.sensors}
    assert {s.name for s in sensors} <= {s.name for s in defs.sensors}
    graph = defs.resolve_asset_graph()
    with_policy = {key.path[0] for key in graph.get_all_asset_keys() if graph.get(key).freshness_policy}
    assert {*CATALOG.roles, "canonical"} <= with_policy
    # every sensor of the location has an owner, but the automation condition sensors, which take none in
    # Dagster 1.13 (when they do, this says so and they get theirs)
    automation = {s.name for s in defs.sensors if isinstance(s, AutomationConditionSensorDefinition)}
    assert automation == {"sync_automation", "write_back_automation", "reconciliation_automation"}
    assert {s.name for s in defs.sensors if not s.owners} == automation


def test_implicit_asset_job_failures_are_per_asset(setup: dict) -> None:
    """Every UI materialization runs as `__ASSET_JOB`: an unrelated success must not clear another asset's failure."""
    instance, receiver = setup["instance"], setup["receiver"]
    asset_job = UI_ASSETS.resolve_implicit_global_asset_job_def()
    assert asset_job.name == "__ASSET_JOB"
    cursor = tick(failed_run_alerts, setup, None)

    STATE.write_text("fail")
    run = asset_job.execute_in_process(
        instance=instance, asset_selection=[AssetKey("probe_flaky")], raise_on_error=False
    )
    assert not run.success
    cursor = tick(failed_run_alerts, setup, cursor)
    (alert,) = receiver.bodies
    assert alert["problem_key"] == "run:__ASSET_JOB:probe_flaky" and alert["asset"] == "probe_flaky"
    assert (alert["system"], alert["owner"]) == ("support", "support-operations")  # the step's op tag `system`
    assert alert["evidence"]["failed_assets"] == ["probe_flaky"]

    # another asset materialized from the UI, successfully: the failed one is still failing
    assert asset_job.execute_in_process(instance=instance, asset_selection=[AssetKey("probe_steady")]).success
    cursor = tick(failed_run_alerts, setup, cursor)
    assert [body["notice"] for body in receiver.bodies] == ["opened"]

    STATE.write_text("pass")
    assert asset_job.execute_in_process(instance=instance, asset_selection=[AssetKey("probe_flaky")]).success
    cursor = tick(failed_run_alerts, setup, cursor)
    assert [(b["notice"], b["problem_key"]) for b in receiver.bodies] == [
        ("opened", "run:__ASSET_JOB:probe_flaky"),
        ("resolved", "run:__ASSET_JOB:probe_flaky"),
    ]


def test_alert_clears_from_a_replaced_instance(tmp_path: Path, config_dir: Path, request) -> None:
    """Moving from a PostgreSQL instance to a fresh SQLite one: its lower event ids still clear the alert."""
    global STATE
    STATE = tmp_path / "state"
    config = [{"kind": "jsonl", "path": str(tmp_path / "alerts.jsonl")}]
    write_monitoring(config_dir / "monitoring.yaml", config)
    warehouse_url = str(tmp_path / "warehouse.duckdb")
    storage_url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
    lines = tmp_path / "alerts.jsonl"

    def evaluations(instance: DagsterInstance) -> list[int]:
        found = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
            dagster_event_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
        return sorted(found)

    with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": storage_url}}}) as old:
        for _ in range(3):
            check_once(old, "fail")
        tick(drift_alerts, {"instance": old, "warehouse_url": warehouse_url}, None)
        last_old_id = evaluations(old)[-1]
    assert [line["notice"] for line in read_lines(lines)] == ["opened"]

    (tmp_path / "new_home").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "new_home")) as new:
        check_once(new, "pass")
        assert evaluations(new)[-1] < last_old_id  # the new instance numbers its events afresh
        tick(drift_alerts, {"instance": new, "warehouse_url": warehouse_url}, None)
    assert [line["notice"] for line in read_lines(lines)] == ["opened", "resolved"]
    (row,) = load_alerts(Warehouse.from_url(warehouse_url))
    assert row["status"] == "resolved" and row["event_source"].startswith("run_storage:")


@asset(key=["crm", "stale_probe"])
def stale_probe() -> int:
    return 1


def _materialized_long_ago(instance: DagsterInstance, key: AssetKey, seconds_ago: float) -> None:
    """A materialization recorded as it would have been `seconds_ago` (the sync that stopped running)."""
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="__RUNLESS_ASSET_JOB__",
        event_specific_data=StepMaterializationData(AssetMaterialization(key)),
    )
    instance.store_event(
        EventLogEntry(
            user_message="",
            level=logging.INFO,
            job_name="__RUNLESS_ASSET_JOB__",
            run_id="",
            error_info=None,
            timestamp=time.time() - seconds_ago,
            dagster_event=event,
        )
    )


def _freshness_changes(instance: DagsterInstance, key: AssetKey, *states: str) -> None:
    """State changes as the freshness daemon records them (runless events), each from the one before."""
    for previous, state in zip(["UNKNOWN", *states], states, strict=False):
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=key,
                previous_state=FreshnessState(previous),
                new_state=FreshnessState(state),
                state_change_timestamp=time.time(),
            )
        )


def test_stale_asset_alerts_on_freshness_state_changes(setup: dict) -> None:
    """WARN opens a WARNING, FAIL escalates it to CRITICAL, PASS resolves it: one problem, three notices."""
    instance, receiver = setup["instance"], setup["receiver"]
    fail_minutes, warn_minutes = load_monitoring().freshness.windows("source")
    _materialized_long_ago(instance, stale_probe.key, (warn_minutes + 5) * 60)
    cursor = tick(freshness_alerts, setup, None)

    _freshness_changes(instance, stale_probe.key, "PASS", "WARN")
    result = evaluate(freshness_alerts, setup, cursor)
    cursor = result.cursor
    (alert,) = receiver.bodies
    assert alert["problem_key"] == "freshness:crm/stale_probe" and alert["family"] == FRESHNESS
    assert (alert["notice"], alert["severity"]) == ("opened", "WARNING")
    assert (alert["system"], alert["owner"]) == ("crm", "revenue-operations")
    assert alert["where"] == "crm/stale_probe · freshness"
    # the exact windows, in minutes, of monitoring.yaml (the UI rounds them)
    assert f"warn after {warn_minutes} min, fail after {fail_minutes} min" in alert["summary"]
    assert alert["evidence"]["freshness_state"] == "WARN"
    assert alert["evidence"]["counts"]["minutes_since_update"] == pytest.approx(warn_minutes + 5, abs=1)
    assert "has not been materialized within its freshness window" in alert["next_action"]
    assert ops_alerts_report(result)["open_alerts"].records[0].data["problem"] == "freshness:crm/stale_probe"

    _freshness_changes(instance, stale_probe.key, "WARN", "FAIL")
    cursor = tick(freshness_alerts, setup, cursor)
    assert [(b["notice"], b["severity"]) for b in receiver.bodies] == [("opened", "WARNING"), ("escalated", "CRITICAL")]
    assert receiver.bodies[1]["evidence"]["freshness_state"] == "FAIL"

    # the freshness sensor alone reads these events; the check sensors ignore them
    for other in sensors:
        if other.name != "freshness_alerts":
            tick(other, setup, None)
    assert len(receiver.bodies) == 2

    # materialized again: the daemon records PASS, one recovery notice; replays change nothing
    materialize([stale_probe], instance=instance)
    _freshness_changes(instance, stale_probe.key, "FAIL", "PASS")
    before = cursor
    cursor = tick(freshness_alerts, setup, cursor)
    tick(freshness_alerts, setup, before)
    tick(freshness_alerts, setup, None)
    assert [b["notice"] for b in receiver.bodies] == ["opened", "escalated", "resolved"]
    (row,) = load_alerts(Warehouse.from_url(setup["warehouse_url"]), "freshness:crm/stale_probe")
    assert row["status"] == "resolved" and row["kind"] == "freshness"
