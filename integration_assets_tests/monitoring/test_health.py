"""Connector health against the sandbox: figures equal to the call log, checks that open on bad days and close after.

Each test syncs for real (HTTP to the sandbox, rows into DuckDB or PostgreSQL), then materializes the
`ops/integration_health` asset with its checks in the same Dagster instance, as the `health` job does.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.config import default_path
from integration_assets.core.errors import IntegrationError
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.sync import sync_stream
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring import health
from integration_assets.monitoring.metrics import HEALTH_TABLE
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sandbox import put_faults
from integration_assets_tests.testing.sync import SOURCES, materialized, resources
from integration_sandbox.server import Sandbox

HEALTH_CHECKS = health.build_health_checks(CATALOG)
HEALTH = [health.build_health_asset(CATALOG), *HEALTH_CHECKS]
SYSTEMS = CATALOG.roles
BAD_DAY = """
seed: 11
default:
  rates: {429: 0.2, 500: 0.4}
zendesk:
  incremental_lag_s: 0
"""
# The sandbox's small business needs few pages: judge rates from 3 calls on (10 in the packaged monitoring.yaml).
FEW_CALLS = {"min_calls": 3}
CLEAN = "seed: 1\nzendesk:\n  incremental_lag_s: 0\n"


@pytest.fixture
def monitoring(config_dir: Path):
    """Writes a copy of the packaged monitoring.yaml with some blocks changed into this test's config folder."""

    def configure(**blocks: dict) -> Path:
        settings = yaml.safe_load(default_path("monitoring.yaml").read_text())
        for name, values in blocks.items():
            settings[name] = {**settings[name], **values}
        path = config_dir / "monitoring.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    configure()  # the shipped thresholds, isolated from edits made to the file meanwhile
    return configure


def run_health(sandbox: Sandbox, warehouse_url: str, instance: DagsterInstance) -> tuple[dict, dict]:
    """Materializes integration_health with its checks: (asset metadata, check name → evaluation)."""
    result = materialize(HEALTH, resources=resources(sandbox, warehouse_url), instance=instance)
    assert result.success
    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert set(checks) == {key.name for c in HEALTH_CHECKS for key in c.check_keys}
    return materialized(result)["ops/integration_health"], checks


def call_log_figures(warehouse: Warehouse) -> dict[str, dict]:
    """Per system, the figures recomputed here from every row of ops.api_calls (all within the window)."""
    rows = warehouse.query("SELECT system, status, latency_ms, attempt, error_category FROM ops.api_calls")
    by_system: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_system[row[0]].append(row)
    figures = {}
    for system, calls in by_system.items():
        latencies = sorted(float(c[2]) for c in calls)
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        failed = sum(c[4] is not None for c in calls)
        figures[system] = {
            "calls": len(calls),
            "failed_calls": failed,
            "success_rate": round((len(calls) - failed) / len(calls), 4),
            "retries": sum(c[3] > 1 for c in calls),
            "rate_limited_429s": sum(c[1] == 429 for c in calls),
            "latency_p50_ms": round(cuts[49], 1),
            "latency_p95_ms": round(cuts[94], 1),
        }
    return figures


def value(metadata: dict, name: str):
    return metadata[name].value


def test_health_figures_are_the_call_log_of_a_faulty_sync(sandbox: Sandbox, warehouse_url: str, monitoring) -> None:
    monitoring(health=FEW_CALLS)
    put_faults(sandbox, BAD_DAY)
    with DagsterInstance.ephemeral() as instance:
        synced = materialize(
            [*SOURCES, *canonical_assets],
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
        assert synced.success
        metadata, checks = run_health(sandbox, warehouse_url, instance)
    warehouse = Warehouse.from_url(warehouse_url)
    expected = call_log_figures(warehouse)
    assert set(expected) == set(SYSTEMS)

    # What the source assets reported about their own calls adds up to the same per system.
    reported: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, source_metadata in materialized(synced).items():
        if "api_calls" in source_metadata:
            system = key.split("/")[0]
            reported[system]["calls"] += value(source_metadata, "api_calls")
            reported[system]["failed_calls"] += value(source_metadata, "failed_calls")
            reported[system]["retries"] += value(source_metadata, "retries")
            reported[system]["rate_limited_429s"] += value(source_metadata, "rate_limited_429s")

    review = warehouse.query(
        "SELECT system, reason_code, count(*) FROM ops.review_queue WHERE status = 'open' GROUP BY system, reason_code"
    )
    assert review, "the planted defects must leave open review items"
    stored = warehouse.frame(f"SELECT * FROM {HEALTH_TABLE}")
    assert sorted(stored["system"]) == sorted(SYSTEMS) and stored["run_id"].nunique() == 1
    assert sum(figures["rate_limited_429s"] for figures in expected.values()) > 0
    limits = load_monitoring().health
    for system in SYSTEMS:
        figures = expected[system]
        assert figures["failed_calls"] > 0 and figures["retries"] > 0
        for name, number in figures.items():
            assert value(metadata, f"{system}_{name}") == pytest.approx(number), (system, name)
        for name, number in reported[system].items():
            assert figures[name] == number, (system, name)
        for _, reason, count in (r for r in review if r[0] == system):
            assert value(metadata, f"{system}_review_open_{reason}") == count
        assert value(metadata, f"{system}_review_open") == sum(r[2] for r in review if r[0] == system)
        assert value(metadata, f"{system}_outbox_pending") == 0  # ops.outbox does not exist yet
        assert value(metadata, f"{system}_minutes_since_sync") >= 0
        row = stored[stored["system"] == system].iloc[0]
        assert int(row["calls"]) == figures["calls"] and int(row["failed_calls"]) == figures["failed_calls"]
        assert row["latency_p95_ms"] == pytest.approx(figures["latency_p95_ms"])

        # A 30 % error rate is far below the success rate wanted: the check fails, figure against threshold.
        assert figures["calls"] >= limits.min_calls
        check = checks[f"connector_health_{system}"]
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert value(check.metadata, "success_rate") == pytest.approx(figures["success_rate"])
        assert value(check.metadata, "system") == system
        assert "success_rate" in value(check.metadata, "sample_ids")
        assert f"(want >= {limits.success_rate_min})" in value(check.metadata, "summary")
        assert checks[f"downtime_{system}"].passed  # every call succeeded in the end


def test_a_clean_day_passes_every_health_check(sandbox: Sandbox, tmp_path: Path, monitoring) -> None:
    monitoring(health=FEW_CALLS)
    put_faults(sandbox, CLEAN)
    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        assert materialize(SOURCES, resources=resources(sandbox, url), instance=instance).success
        metadata, checks = run_health(sandbox, url, instance)
    limits = load_monitoring().health
    for system in SYSTEMS:
        assert value(metadata, f"{system}_calls") >= limits.min_calls
        assert value(metadata, f"{system}_success_rate") == 1.0
        for name in ("connector_health", "downtime", "traffic"):
            assert checks[f"{name}_{system}"].passed, value(checks[f"{name}_{system}"].metadata, "summary")
        # Nothing was called in the window before: too little evidence to speak of a drop.
        assert "not enough evidence" in value(checks[f"traffic_{system}"].metadata, "summary")
    for system in SYSTEMS:
        assert checks[f"credential_expiry_{system}"].passed


def test_too_few_calls_pass_with_a_note(sandbox: Sandbox, tmp_path: Path, monitoring) -> None:
    put_faults(sandbox, "seed: 2\nstripe:\n  rates: {500: 0.5}\n")
    url = str(tmp_path / "warehouse.duckdb")
    customers = [a for a in SOURCES if a.key.to_user_string() == "billing/customers"]
    with DagsterInstance.ephemeral() as instance:
        assert materialize(customers, resources=resources(sandbox, url), instance=instance).success
        calls = Warehouse.from_url(url).query("SELECT count(*) FROM ops.api_calls")[0][0]
        monitoring(health={"min_calls": calls + 1})
        _, checks = run_health(sandbox, url, instance)
    check = checks["connector_health_billing"]
    assert check.passed and "not enough evidence" in value(check.metadata, "summary")


def _sync_billing_customers(sandbox: Sandbox, url: str, run_id: str) -> None:
    connection = resources(sandbox, url, max_attempts=3)["stripe"]
    client = connection.client(connector="billing_source", run_id=run_id)
    try:
        sync_stream(CATALOG.streams_of("billing")[0], client, Warehouse.from_url(url), run_id=run_id)
    finally:
        client.close()


def test_downtime_opens_when_every_call_fails_and_clears_after(
    sandbox: Sandbox, warehouse_url: str, monitoring
) -> None:
    """The sync step runs as the source asset does (sync_stream), without its 30-second step retries."""
    limits = load_monitoring().health
    warehouse = Warehouse.from_url(warehouse_url)
    warehouse.ensure_ops_tables()
    put_faults(sandbox, "stripe:\n  rates: {503: 1.0}\n")
    with DagsterInstance.ephemeral() as instance:
        for attempt in range(2):  # 3 attempts a call: two failed syncs make 6 failed calls in a row
            with pytest.raises(IntegrationError):
                _sync_billing_customers(sandbox, warehouse_url, run_id=f"down-{attempt}")
        failed = warehouse.query("SELECT status, error_category FROM ops.api_calls WHERE system = 'billing'")
        assert len(failed) >= limits.down_after_failures and {row[0] for row in failed} == {503}
        assert all(row[1] is not None for row in failed)
        _, checks = run_health(sandbox, warehouse_url, instance)
        down = checks["downtime_billing"]
        assert not down.passed and down.severity == AssetCheckSeverity.ERROR
        assert value(down.metadata, "alert_severity") == "CRITICAL"
        assert value(down.metadata, "consecutive_failures") == len(failed)
        assert value(down.metadata, "problems") == len(failed)  # every failed call of the streak, as evidence
        assert "503" in value(down.metadata, "records") and "is down" in value(down.metadata, "summary")
        assert checks["downtime_crm"].passed and checks["downtime_support"].passed

        put_faults(sandbox, CLEAN)
        _sync_billing_customers(sandbox, warehouse_url, run_id="recovered")
        _, checks = run_health(sandbox, warehouse_url, instance)
        assert checks["downtime_billing"].passed
        assert value(checks["downtime_billing"].metadata, "consecutive_failures") == 0


def test_traffic_drop_against_the_window_before(sandbox: Sandbox, tmp_path: Path, monitoring) -> None:
    monitoring(health=FEW_CALLS)
    put_faults(sandbox, CLEAN)
    url = str(tmp_path / "warehouse.duckdb")
    warehouse = Warehouse.from_url(url)
    limits = load_monitoring().health
    with DagsterInstance.ephemeral() as instance:
        assert materialize(SOURCES, resources=resources(sandbox, url), instance=instance).success
        # The full sync becomes the window before: its calls are moved back by one window.
        with warehouse.transaction() as tx:
            tx.execute(f"UPDATE ops.api_calls SET called_at = called_at - INTERVAL '{limits.window_minutes} minutes'")
        companies = [a for a in SOURCES if a.key.to_user_string() == CATALOG.streams_of("crm")[0].key]
        assert materialize(companies, resources=resources(sandbox, url), instance=instance).success
        _, checks = run_health(sandbox, url, instance)
    counts = dict(warehouse.query("SELECT system, count(*) FROM ops.api_calls GROUP BY system"))
    now_calls = dict(
        warehouse.query(
            "SELECT system, count(*) FROM ops.api_calls WHERE called_at >= ? GROUP BY system",
            [datetime.now(UTC) - timedelta(minutes=limits.window_minutes)],
        )
    )
    verdicts = {}
    for system in SYSTEMS:
        previous, current = counts[system] - now_calls.get(system, 0), now_calls.get(system, 0)
        assert previous >= limits.min_calls
        check = checks[f"traffic_{system}"]
        verdicts[system] = check.passed
        assert check.passed is (current >= limits.traffic_drop_share * previous), system
        assert value(check.metadata, "previous_window_calls") == previous
        assert value(check.metadata, "calls") == current
        if not check.passed:
            assert check.severity == AssetCheckSeverity.WARN and "dropped to" in value(check.metadata, "summary")
    # Billing and support went silent: a drop. The CRM still syncs: however much less, not below the share.
    assert verdicts == {"crm": True, "billing": False, "support": False}


@pytest.mark.parametrize(
    ("days_ahead", "passed", "severity", "state"),
    [
        (3, False, AssetCheckSeverity.WARN, "expiring"),
        (-2, False, AssetCheckSeverity.ERROR, "expired"),
        (400, True, None, "valid"),
    ],
)
def test_credential_expiry(
    tmp_path: Path, monitoring, days_ahead: int, passed: bool, severity: AssetCheckSeverity | None, state: str
) -> None:
    today = datetime.now(UTC).date()  # the check's clock
    expires_on, far = today + timedelta(days=days_ahead), today + timedelta(days=1000)
    monitoring(credentials={"expires_on": {"billing": expires_on.isoformat(), "crm": far.isoformat()}})
    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        result = materialize(HEALTH, resources={"warehouse": WarehouseResource(url=url)}, instance=instance)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # one check per system: each credential is its own problem, with its own system, owner and alert
    assert {name for name in checks if name.startswith("credential_expiry")} == {
        f"credential_expiry_{system}" for system in SYSTEMS
    }
    assert checks["credential_expiry_crm"].passed and checks["credential_expiry_support"].passed
    assert value(checks["credential_expiry_crm"].metadata, "system") == "crm"
    assert "no credential expiry configured" in value(checks["credential_expiry_support"].metadata, "summary")
    check = checks["credential_expiry_billing"]
    assert check.passed is passed
    evidence = value(check.metadata, "evidence")
    assert f"| billing | Stripe | {expires_on.isoformat()} | {days_ahead} |" in evidence and state in evidence
    assert value(check.metadata, "system") == "billing"
    if not passed:
        assert check.severity == severity
        assert value(check.metadata, "sample_ids") == "billing"
        assert expires_on.isoformat() in value(check.metadata, "summary")
