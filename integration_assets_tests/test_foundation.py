"""The code location loads the way users load it, and dagster.yaml is a working PostgreSQL instance."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import requests
from dagster import DagsterInstance, asset, materialize

from integration_assets.definitions import defs
from integration_assets_tests.testing import DAGSTER, POSTGRES, PROJECT

# What the UI asks for on its sensors, schedules and asset-check pages.
REPOSITORY = '{repositoryLocationName: "integration_assets", repositoryName: "__repository__"}'
UI_QUERY = f"""{{
  sensorsOrError(repositorySelector: {REPOSITORY}) {{
    ... on Sensors {{ results {{ name sensorState {{ status }} }} }}
  }}
  schedulesOrError(repositorySelector: {REPOSITORY}) {{ ... on Schedules {{ results {{ name cronSchedule }} }} }}
  assetNodes {{ assetKey {{ path }} assetChecksOrError {{ ... on AssetChecks {{ checks {{ name }} }} }} }}
}}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_definitions_validate(tmp_path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([DAGSTER, "definitions", "validate"], cwd=PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_dagster_dev_loads_the_code_location(tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [DAGSTER, "dev", "--port", str(port), "--host", "127.0.0.1"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    try:
        deadline, entries = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=5)
                entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except (requests.ConnectionError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert [(e["name"], e["loadStatus"]) for e in entries] == [("integration_assets", "LOADED")]
        shown = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": UI_QUERY}, timeout=30).json()["data"]
        sensors = {s["name"]: s["sensorState"]["status"] for s in shown["sensorsOrError"]["results"]}
        assert sensors == {s.name: "RUNNING" for s in defs.sensors}
        schedules = {s["name"]: s["cronSchedule"] for s in shown["schedulesOrError"]["results"]}
        assert schedules == {s.name: s.cron_schedule for s in defs.schedules}
        checks = {
            ("/".join(node["assetKey"]["path"]), check["name"])
            for node in shown["assetNodes"]
            for check in node["assetChecksOrError"]["checks"]
        }
        # every check by name on its asset, those evaluated in their asset's own step included
        assert checks == {
            (key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys
        }
        assert ("canonical/deals", "won_deals_invoiced") in checks and ("crm/contacts", "drift") in checks
        assert ("crm/contacts", "complete_against_vendor") in checks and ("canonical/deals", "contract") in checks
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a slow shutdown on a loaded machine is not what this test judges
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def test_dagster_yaml_is_a_postgres_instance_that_stores_runs(tmp_path, monkeypatch) -> None:
    shutil.copy(PROJECT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    for name, value in POSTGRES.items():
        monkeypatch.setenv(name, value)

    @asset
    def instance_probe() -> int:
        return 1

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = materialize([instance_probe], instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        assert instance.get_latest_materialization_event(instance_probe.key) is not None
