"""The monitoring drill of issue 5, end to end as an operator meets it: a vendor drifts (injected through the
sandbox's fault profile), the drift check fails with a readable diff, the drift sensor posts exactly one alert to
a webhook on loopback and the JSON-lines file; the drift stays, nothing more is sent; the vendor is fixed, exactly
one recovery notice. On a SQLite and on a PostgreSQL Dagster instance, with the sensor from the Definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test, materialize

from integration_assets.core.resources import WarehouseResource
from integration_assets.definitions import defs
from integration_assets_tests.testing.alerts import WebhookReceiver, read_lines, write_monitoring
from integration_assets_tests.testing.sandbox import put_faults
from integration_assets_tests.testing.sync import SOURCES, checked_sources, resources
from integration_sandbox.server import Sandbox

# One stream drifts: the vendor renames a promised field and adds one nobody asked for.
CONTACTS_DRIFT = """\
seed: 3
hubspot:
  drift:
    contacts:
      rename: {phone: phone_number}
      add: {hs_legal_basis: "Legitimate interest"}
"""
NO_FAULTS = "seed: 1\n"
WITH_DRIFT = checked_sources("drift")  # each stream with its drift check, in its own step
FULL_REFRESH = {"ops": {a.op.name: {"config": {"full_refresh": True}} for a in SOURCES}}


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterInstance]:
    if request.param == "sqlite":
        (tmp_path / "home").mkdir()
        with instance_for_test(temp_dir=str(tmp_path / "home")) as sqlite:
            yield sqlite
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
        with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as postgres:
            yield postgres


def test_drift_alerts_once_and_recovers_once(
    sandbox: Sandbox, instance: DagsterInstance, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse_url = str(tmp_path / "warehouse.duckdb")
    sensor = defs.resolve_sensor_def("drift_alerts")
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("DRILL_ALERT_HOOK", receiver.url)
        sinks = [{"kind": "jsonl", "path": "alerts.jsonl"}, {"kind": "webhook", "url_env": "DRILL_ALERT_HOOK"}]
        write_monitoring(config_dir / "monitoring.yaml", sinks)
        lines = Path(instance.root_directory) / "alerts.jsonl"
        cursor: str | None = None

        def run_and_tick() -> dict:
            nonlocal cursor
            result = materialize(
                WITH_DRIFT,
                resources=resources(sandbox, warehouse_url),
                instance=instance,
                run_config=FULL_REFRESH,
            )
            assert result.success
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource(url=warehouse_url)}
            )
            cursor = sensor.evaluate_tick(context).cursor
            return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}

        clean = run_and_tick()
        assert len(clean) == 9 and all(e.passed for e in clean.values())
        assert receiver.bodies == [] and read_lines(lines) == []

        put_faults(sandbox, CONTACTS_DRIFT)
        drifted = run_and_tick()
        failing = {key for key, e in drifted.items() if not e.passed}
        assert failing == {"crm/contacts"}
        diff = drifted["crm/contacts"].metadata["records"].value
        for readable in ("properties.phone", "removed", "properties.phone_number", "properties.hs_legal_basis", "new"):
            assert readable in diff, diff
        assert len(receiver.bodies) == 1
        alert = receiver.bodies[0]
        assert (alert["notice"], alert["asset"], alert["check_name"]) == ("opened", "crm/contacts", "drift")
        assert alert["severity"] == "CRITICAL" and alert["system"] == "crm" and alert["next_action"]
        assert alert["owner"] == "revenue-operations"
        assert read_lines(lines) == receiver.bodies

        run_and_tick()  # still drifted: the problem stays open, nobody is told again
        assert len(receiver.bodies) == 1 and len(read_lines(lines)) == 1

        put_faults(sandbox, NO_FAULTS)
        recovered = run_and_tick()
        assert all(e.passed for e in recovered.values())
        assert [b["notice"] for b in receiver.bodies] == ["opened", "resolved"]
        assert receiver.bodies[1]["problem_key"] == alert["problem_key"]
        assert read_lines(lines) == receiver.bodies

        run_and_tick()  # healthy again: silence
        assert len(receiver.bodies) == 2 and len(read_lines(lines)) == 2
