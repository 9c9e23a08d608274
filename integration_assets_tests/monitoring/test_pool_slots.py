"""Pool slots are never lost: run monitoring on both instances, the blocked-pool alert, freeing a slot by hand.

The drills run the real processes, as an operator's machine does: `dagster-daemon` (run queue and run monitoring)
on an instance made from the quickstart's or the project's instance yaml (only the daemon's intervals shortened),
runs launched with `dagster job launch` or executed with `dagster job execute`, killed with SIGKILL, and
`dagster-webserver` for the free-slots command. The code location is `pool_location.py`: an asset that holds
the `stripe` pool and sleeps, and one that needs it for a moment. The blocked-pool sensor is ticked from the test
(as `dagster-daemon` would, with its cursor carried over) so its timing is the test's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter, build_sensor_context

from integration_assets.core.config import ConfigError, default_path
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import Observation, load_alerts
from integration_assets.monitoring.pools import (
    PoolState,
    RunRef,
    blocked_pool_alerts,
    pool_observations,
    problem_key_for_pool,
)
from integration_assets.quickstart import prepare_instance
from integration_assets_tests.testing import DAGSTER, POSTGRES, PROJECT
from integration_assets_tests.testing.alerts import read_lines
from integration_assets_tests.testing.processes import process_group, wait_for

BIN = Path(sys.executable).parent
LOCATION = "integration_assets_tests.monitoring.pool_location"
POOL = "stripe"
# The daemon's intervals shortened so a drill takes seconds, not minutes; every other setting is the real one.
FAST = {
    "run_coordinator": {"config": {"dequeue_interval_seconds": 1}},
    "run_monitoring": {"poll_interval_seconds": 1},
}
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _embedded_instance_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart writes the PostgreSQL instance when DAGSTER_PG_HOST is set: only `_use_postgres` sets it."""
    monkeypatch.delenv("DAGSTER_PG_HOST", raising=False)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def _use_postgres(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The DAGSTER_PG_* settings of dagster.yaml, pointing at a fresh database (dropped after the test)."""
    fresh_database = request.getfixturevalue("postgres_url").rsplit("/", 1)[1]
    for name, value in {**POSTGRES, "DAGSTER_PG_DB": fresh_database}.items():
        monkeypatch.setenv(name, value)


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]) -> Path:
    """A DAGSTER_HOME as the quickstart prepares it, with `overrides` merged in: the embedded instance's yaml, or
    the project's dagster.yaml when DAGSTER_PG_HOST is set (`_use_postgres`)."""
    home = tmp_path / "home"
    prepare_instance(home)
    config = _merge(yaml.safe_load((home / "dagster.yaml").read_text()), overrides)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the alert sensor's JSON-lines sink lives there
    return home


def _env(home: Path, drill: Path) -> dict[str, str]:
    drill.mkdir(exist_ok=True)
    return {**os.environ, "DAGSTER_HOME": str(home), "POOL_DRILL_DIR": str(drill)}


@contextmanager
def _daemon(tmp_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    command = [str(BIN / "dagster-daemon"), "run", "-m", LOCATION, "-d", str(PROJECT)]
    with process_group(command, tmp_path, env, tmp_path / "daemon.log") as daemon:
        yield daemon


def _launch(job: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """`dagster job launch`: the run goes to the queue; the daemon starts it (its own code server runs it)."""
    command = [DAGSTER, "job", "launch", "-m", LOCATION, "-d", str(PROJECT), "-j", job]
    with (tmp_path / f"launch-{job}.log").open("w") as log:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def _launched(launch: subprocess.Popen, tmp_path: Path) -> None:
    if launch.wait(timeout=120) != 0:
        raise AssertionError((tmp_path / f"launch-{launch.args[-1]}.log").read_text()[-3000:])


def _run_of(instance: DagsterInstance, job: str) -> str | None:
    runs = instance.get_runs(filters=RunsFilter(job_name=job))
    return runs[0].run_id if runs else None


def _execute(tmp_path: Path, env: dict[str, str], tags: dict[str, str] | None = None):
    """`dagster job execute -j hold`: the run executes in this very process, outside the daemon."""
    command = [DAGSTER, "job", "execute", "-m", LOCATION, "-d", str(PROJECT), "-j", "hold"]
    command += ["--tags", json.dumps(tags)] if tags else []
    return process_group(command, tmp_path, env, tmp_path / "execute.log")


def _run_id(instance: DagsterInstance, job: str) -> str:
    runs = instance.get_runs(filters=RunsFilter(job_name=job))
    assert len(runs) == 1, runs
    return runs[0].run_id


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def _holders(instance: DagsterInstance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def _holding(drill: Path, instance: DagsterInstance) -> tuple[str, int, int]:
    """Once `hold_stripe` runs: its run id, its own pid and its parent's (the run worker)."""
    marker = wait_for("hold_stripe started", lambda: next(drill.glob("*.pid"), None), 90)
    run_id = marker.stem
    step, worker = (int(part) for part in wait_for("pid marker written", marker.read_text, 5).split())
    assert _holders(instance) == {run_id}, "the step runs: it holds the pool's one slot"
    return run_id, step, worker


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _monitoring_yaml(config_dir: Path, blocked_alert_minutes: float) -> None:
    config = yaml.safe_load(default_path("monitoring.yaml").read_text())
    config["alerts"]["sinks"] = [{"kind": "jsonl", "path": "alerts.jsonl"}]
    config["pools"] = {"blocked_alert_minutes": blocked_alert_minutes}
    (config_dir / "monitoring.yaml").write_text(yaml.safe_dump(config))


class SensorTicks:
    """The blocked-pool sensor ticked as the daemon ticks it: its cursor carried from one tick to the next."""

    def __init__(self, instance: DagsterInstance, warehouse_url: str) -> None:
        self.instance = instance
        self.warehouse = WarehouseResource(url=warehouse_url)
        self.cursor: str | None = None

    def tick(self) -> str:
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": self.warehouse}
        )
        result = blocked_pool_alerts.evaluate_tick(context)
        self.cursor = result.cursor
        return result.skip_message or ""

    def alerts(self) -> list[dict]:
        store = Warehouse.from_url(self.warehouse.url)
        return load_alerts(store, problem_key_for_pool(POOL)) if store.has_table("ops.alerts") else []


# --------------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("kind", ["quickstart (SQLite)", "dagster.yaml (PostgreSQL)"])
def test_both_instances_monitor_runs_and_free_a_dead_runs_slots(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if "PostgreSQL" in kind:
        _use_postgres(monkeypatch, request)
    described = prepare_instance(tmp_path)
    assert ("PostgreSQL" in described) == ("PostgreSQL" in kind)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        settings = instance.run_monitoring_settings
        assert 0 < settings["free_slots_after_run_end_seconds"] <= 300
        assert instance.run_monitoring_max_runtime_seconds >= 3600  # a backstop, not a limit on honest runs
        assert instance.run_monitoring_poll_interval_seconds <= 120
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the DefaultRunLauncher cannot resume
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.global_op_concurrency_default_limit == 1
    quickstart = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    production = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    assert quickstart["run_monitoring"] == production["run_monitoring"], "both instances monitor runs alike"


def test_the_blocked_pool_limit_is_validated_at_load_and_has_a_default(config_dir: Path) -> None:
    assert load_monitoring().pools.blocked_alert_minutes == 30
    config = yaml.safe_load(default_path("monitoring.yaml").read_text())
    del config["pools"]  # a copy made before the setting existed keeps working
    (config_dir / "monitoring.yaml").write_text(yaml.safe_dump(config))
    assert load_monitoring().pools.blocked_alert_minutes == 30
    config["pools"] = {"blocked_alert_minutes": 0}
    (config_dir / "monitoring.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as refused:
        load_monitoring()
    assert str(config_dir / "monitoring.yaml") in str(refused.value)
    assert "pools.blocked_alert_minutes" in str(refused.value)
    config["pools"] = {"blocked_after_minutes": 5}  # a mistyped name is refused, not ignored
    (config_dir / "monitoring.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"pools\.blocked_after_minutes"):
        load_monitoring()


def test_a_wait_alerts_only_past_the_limit_and_names_the_holders() -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    holder = RunRef("run-holding", "crm__contacts", "integration_sync", "STARTED")
    waiting = [
        RunRef("run-waiting", "billing__customers", "integration_sync", "STARTED", now - timedelta(seconds=50)),
        RunRef("run-waiting", "billing__invoices", "integration_sync", "STARTED", now - timedelta(seconds=70)),
        RunRef("run-queued", None, "write_back", "QUEUED", now - timedelta(seconds=30)),
    ]
    owners = load_monitoring().owners

    def observe(state: PoolState, limit_seconds: float) -> Observation:
        (observation,) = pool_observations([state], now, limit_seconds, owners, 1, "test")
        return observation

    assert not observe(PoolState("hubspot", 1, [holder], waiting), 70).failing  # 70 s is not past 70 s
    late = observe(PoolState("hubspot", 1, [holder], waiting), 40)
    assert late.failing and late.problem_key == "pool:hubspot" and late.family == "pools"
    assert late.severity == "WARNING"  # the holder may just be slow
    assert late.system == "crm" and late.owner == owners.of("crm")
    assert "run-holding" in late.summary and "run-waiting" in late.summary and "run-queued" not in late.summary
    assert late.evidence["counts"]["longest_wait_minutes"] == round(70 / 60, 1)  # a run counts its longest wait
    assert [w["run_id"] for w in late.evidence["waiting"]] == ["run-waiting"]
    assert "integration-free-slots <run id>" in late.next_action
    dead = RunRef("run-dead", "crm__deals", "integration_sync", "FAILURE")
    lost = observe(PoolState("hubspot", 1, [dead], waiting), 20)
    assert lost.severity == "CRITICAL" and "run-queued" in lost.summary
    assert "integration-free-slots run-dead" in lost.next_action
    assert observe(PoolState("stripe", 0, [], waiting), 20).severity == "CRITICAL"  # nobody holds it: limit 0
    assert not observe(PoolState("zendesk", 1, [holder], []), 1).failing


def test_the_code_location_runs_the_blocked_pool_sensor() -> None:
    from dagster import DefaultSensorStatus

    from integration_assets.definitions import defs

    sensor = defs.resolve_sensor_def("blocked_pool_alerts")
    assert sensor.default_status == DefaultSensorStatus.RUNNING


# ------------------------------------------------------------------------------------------------------ drills


@pytest.mark.parametrize("kind", ["quickstart (SQLite)", "dagster.yaml (PostgreSQL)"])
def test_a_sigkilled_run_is_failed_its_slot_freed_and_the_blocked_pool_alerts(
    kind: str, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if "PostgreSQL" in kind:
        _use_postgres(monkeypatch, request)
    free_after = 15  # seconds the daemon leaves a finished run's slots before freeing them
    home = _home(
        tmp_path, monkeypatch, _merge(FAST, {"run_monitoring": {"free_slots_after_run_end_seconds": free_after}})
    )
    _monitoring_yaml(config_dir, blocked_alert_minutes=0.1)  # 6 s
    drill = tmp_path / "drill"
    env = _env(home, drill)
    step_pid = 0
    with DagsterInstance.from_config(str(home)) as instance, _daemon(tmp_path, env):
        ticks = SensorTicks(instance, str(tmp_path / "warehouse.duckdb"))
        try:
            launches = [_launch("hold", tmp_path, env)]
            queued = wait_for("the hold run queued", lambda: _run_of(instance, "hold"), 90)
            wait_for("the hold run started", lambda: _status(instance, queued) == DagsterRunStatus.STARTED, 60)
            launches.append(_launch("quick", tmp_path, env))  # the queue now counts the pool as taken
            holder, step_pid, worker = _holding(drill, instance)
            assert holder == queued
            for launch in launches:
                _launched(launch, tmp_path)
            waiter = _run_id(instance, "quick")
            assert _status(instance, waiter) == DagsterRunStatus.QUEUED

            # the waiter is held back in the queue past the limit: one alert naming the pool and the holder
            wait_for("the blocked-pool alert", lambda: ticks.tick() and ticks.alerts(), 60, every=1)
            (alert,) = ticks.alerts()
            assert alert["status"] == "open" and alert["severity"] == "WARNING" and alert["family"] == "pools"
            assert POOL in alert["summary"] and holder in alert["summary"] and waiter in alert["summary"]
            assert alert["evidence"]["held_by"] == [
                {"run_id": holder, "job": "hold", "status": "STARTED", "step": "hold_stripe"}
            ]
            assert [w["run_id"] for w in alert["evidence"]["waiting"]] == [waiter]
            assert alert["system"] == "billing" and alert["owner"] == "finance-operations"
            assert _status(instance, waiter) == DagsterRunStatus.QUEUED

            # SIGKILL the run worker: its code server sees the process gone and marks the run failed
            killed = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            wait_for("the killed run marked failed", lambda: _status(instance, holder) == DagsterRunStatus.FAILURE, 30)
            crash = [e.message for e in instance.all_logs(holder, of_type=DagsterEventType.ENGINE_EVENT)]
            assert any("SIGKILL" in message for message in crash), crash

            # the failed run still holds the slot for a while: the alert rises to CRITICAL, naming it
            assert _holders(instance) == {holder}, "freed sooner than free_slots_after_run_end_seconds"
            ticks.tick()
            (alert,) = ticks.alerts()
            assert alert["severity"] == "CRITICAL" and alert["evidence"]["held_by"][0]["status"] == "FAILURE"

            # the daemon frees it, dequeues the waiter, which completes: nobody lifted a finger
            wait_for("the daemon freed the slot", lambda: holder not in _holders(instance), free_after + 30)
            wait_for("the waiting run succeeded", lambda: _status(instance, waiter) == DagsterRunStatus.SUCCESS, 90)
            recovered = time.monotonic() - killed
            assert recovered < 90, recovered

            ticks.tick()
            (alert,) = ticks.alerts()
            assert alert["status"] == "resolved"
            notices = [line for line in read_lines(home / "alerts.jsonl") if line["problem_key"] == "pool:stripe"]
            assert [(n["notice"], n["severity"]) for n in notices] == [
                ("opened", "WARNING"),
                ("escalated", "CRITICAL"),
                ("resolved", "CRITICAL"),
            ]
            assert "integration-free-slots" in notices[0]["next_action"]
            assert "no run waited" in ticks.tick()  # quiet again, and stays so
        finally:
            _kill(step_pid)  # the multiprocess executor's step outlives its killed run worker


def test_a_run_killed_outside_the_daemon_is_failed_at_its_max_runtime_and_its_slot_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, monkeypatch, _merge(FAST, {"run_monitoring": {"free_slots_after_run_end_seconds": 2}}))
    drill = tmp_path / "drill"
    env = _env(home, drill)
    with DagsterInstance.from_config(str(home)) as instance, _daemon(tmp_path, env):
        # `dagster job execute` runs in its own process: no code server watches it, only the run's max runtime
        with _execute(tmp_path, env, tags={"dagster/max_runtime": "8"}) as execute:
            holder, _, worker = _holding(drill, instance)
            assert worker == execute.pid
            os.killpg(execute.pid, signal.SIGKILL)  # the run and its step, as a container kill would
            execute.wait(timeout=30)
        assert _status(instance, holder) == DagsterRunStatus.STARTED, "nothing saw it die"
        record = instance.get_run_record_by_id(holder)
        assert record is not None and record.start_time is not None
        wait_for("the dead run failed at its max runtime", lambda: instance.get_run_by_id(holder).is_finished, 40)
        assert _status(instance, holder) == DagsterRunStatus.FAILURE
        said = [entry.message for entry in instance.all_logs(holder)]
        assert any("maximum runtime of 8 seconds" in message for message in said), said
        failed = instance.get_run_record_by_id(holder)
        assert failed is not None and failed.end_time is not None and failed.end_time - record.start_time >= 8
        wait_for("the daemon freed the slot", lambda: not _holders(instance), 30)


# ------------------------------------------------------------------------------------------- by hand, no daemon


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _free_slots(*args: str) -> subprocess.CompletedProcess:
    command = [str(BIN / "integration-free-slots"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_free_slots_command_frees_a_dead_runs_slot_through_the_webserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, monkeypatch, {})
    drill = tmp_path / "drill"
    env = _env(home, drill)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = [str(BIN / "dagster-webserver"), "-m", LOCATION, "-d", str(PROJECT), "-h", "127.0.0.1", "-p", str(port)]

    def answering() -> bool:
        with suppress(requests.RequestException):
            return requests.get(f"{url}/server_info", timeout=2).status_code == 200
        return False

    with (
        DagsterInstance.from_config(str(home)) as instance,
        process_group(webserver, tmp_path, env, tmp_path / "web.log"),
    ):
        # no daemon: a `dagster job execute` killed while it holds the slot stays STARTED, holding it for ever
        with _execute(tmp_path, env) as execute:
            holder, _, _ = _holding(drill, instance)
            os.killpg(execute.pid, signal.SIGKILL)
            execute.wait(timeout=30)
        assert _status(instance, holder) == DagsterRunStatus.STARTED and _holders(instance) == {holder}
        wait_for(f"dagster-webserver answering at {url}", answering, 60, every=0.5)

        listed = _free_slots("--url", url)
        assert listed.returncode == 0, listed.stderr
        assert "pool stripe: limit 1, 1 held" in listed.stdout
        assert f"held by run {holder} (hold, STARTED), step hold_stripe" in listed.stdout

        refused = _free_slots("--url", url, holder)  # in progress for the instance: freeing it needs --force
        assert refused.returncode == 1 and "--force" in refused.stderr and holder in refused.stderr
        assert _holders(instance) == {holder}

        freed = _free_slots("--url", url, "--force", holder)
        assert freed.returncode == 0, freed.stderr
        assert f"freed 1 slot(s) of run {holder} (hold, STARTED): stripe (step hold_stripe)" in freed.stdout
        assert _holders(instance) == set()
        again = _free_slots("--url", url, "--force", holder)
        assert again.returncode == 0 and "held no slot" in again.stdout
        assert "pool stripe: limit 1, 0 held, 0 waiting" in _free_slots("--url", url).stdout

    gone = f"http://127.0.0.1:{_free_port()}"
    unreachable = _free_slots("--url", gone)
    assert unreachable.returncode == 1
    assert f"cannot reach the Dagster webserver at {gone}" in unreachable.stderr
