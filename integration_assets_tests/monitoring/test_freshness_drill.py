"""The freshness alerts under the real daemon: a policy judged by Dagster's freshness daemon, its state changes
turned into alerts by the project's sensor, ticked by the sensor daemon.

`dagster-daemon run` on a fresh instance (DAGSTER_HOME in a temporary folder, the freshness daemon's interval
shortened) against `freshness_location.py`: one asset warning after 1 minute and failing after 2, and the
project's `freshness_alerts` sensor. The drill materializes the asset, lets it go stale (the alert opens as a
WARNING, then escalates to CRITICAL), materializes it again (the alert resolves), and reads what reached the
JSON-lines sink and the `ops/alerts` reports. It takes about two and a half minutes, the shortest windows
Dagster allows; it waits for outcomes, never asserts a timing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from dagster import DagsterInstance, materialize

from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import load_alerts
from integration_assets.monitoring.sensors import OPS_ALERTS
from integration_assets_tests.monitoring.freshness_location import FAIL_MINUTES, WARN_MINUTES, fresh_probe
from integration_assets_tests.testing import PROJECT
from integration_assets_tests.testing.alerts import read_lines, write_monitoring
from integration_assets_tests.testing.processes import process_group, wait_for

LOCATION = "integration_assets_tests.monitoring.freshness_location"
BIN = Path(sys.executable).parent
PROBLEM = "freshness:crm/fresh_probe"
T = TypeVar("T")


def _daemon(home: Path, env: dict[str, str]):
    """`dagster-daemon run` against the drill's code location."""
    command = [str(BIN / "dagster-daemon"), "run", "-m", LOCATION, "-d", str(PROJECT)]
    return process_group(command, home, env, home / "daemon.log")


def _notices(lines: Path) -> list[tuple[str, str]]:
    return [(line["notice"], line["severity"]) for line in read_lines(lines) if line["problem_key"] == PROBLEM]


def _reports(instance: DagsterInstance) -> list[dict]:
    """The `ops/alerts` reports so far, oldest first, as plain values."""
    records = instance.fetch_materializations(OPS_ALERTS, limit=100, ascending=True).records
    return [
        {name: value.value for name, value in record.asset_materialization.metadata.items()}
        for record in records
        if record.asset_materialization is not None
    ]


def test_freshness_alert_opens_escalates_and_resolves_under_the_daemon(
    tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}}))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    write_monitoring(config_dir / "monitoring.yaml", [{"kind": "jsonl", "path": "alerts.jsonl"}])
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "2",
        "FRESHNESS_DRILL_WAREHOUSE": str(warehouse),
    }
    lines = home / "alerts.jsonl"
    window = (FAIL_MINUTES + 1) * 60  # the longest any state can take to arrive

    with DagsterInstance.from_config(str(home)) as instance, _daemon(home, env):
        log = home / "daemon.log"
        assert materialize([fresh_probe], instance=instance).success

        assert wait_for("WARN opens a WARNING alert", lambda: _notices(lines), window, 1, log) == [
            ("opened", "WARNING")
        ]
        (opened,) = read_lines(lines)
        assert opened["family"] == "freshness" and opened["owner"] == "revenue-operations"
        assert f"warn after {WARN_MINUTES} min, fail after {FAIL_MINUTES} min" in opened["summary"]
        assert opened["evidence"]["freshness_state"] == "WARN"

        wait_for("FAIL escalates it", lambda: len(_notices(lines)) >= 2, window, 1, log)
        assert _notices(lines) == [("opened", "WARNING"), ("escalated", "CRITICAL")]
        open_now = wait_for(
            "ops/alerts reports it", lambda: [r for r in _reports(instance) if r["open_count"]], 30, 1, log
        )
        assert open_now[-1]["open_alerts"].records[0].data["problem"] == PROBLEM

        assert materialize([fresh_probe], instance=instance).success
        wait_for("PASS resolves it", lambda: len(_notices(lines)) >= 3, window, 1, log)
        assert _notices(lines) == [("opened", "WARNING"), ("escalated", "CRITICAL"), ("resolved", "CRITICAL")]
        wait_for("ops/alerts reports none open", lambda: _reports(instance)[-1]["open_count"] == 0, 30, 1, log)

    (row,) = load_alerts(Warehouse.from_url(str(warehouse)), PROBLEM)
    assert row["status"] == "resolved" and row["severity"] == "CRITICAL" and row["pending"] is False
