"""SIGKILL in the middle of a sync: a killed run, run again, ends exactly as an uninterrupted one; a killed
vendor step takes only itself down.

The runs go through the `dagster` CLI with the code location's own executor (each step forked from a
preloaded server), as a scheduled run would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance

from integration_assets.core.warehouse import Warehouse
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults
from integration_assets_tests.testing.sync import ALL_STREAMS, differences, sandbox_env
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

DAGSTER = str(Path(sys.executable).with_name("dagster"))
SLOW_AND_FAULTY = """
seed: 9
default:
  latency_ms: [15, 30]
  rates: {500: 0.05, reset: 0.05}
zendesk:
  incremental_lag_s: 0
"""


@pytest.fixture(scope="module")
def bigger_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bigger")
    generate(out, seed=21, scale=600, defect_rate=0.05)
    return out


@pytest.fixture
def slow_sandbox(bigger_dataset: Path) -> Iterator[Sandbox]:
    with Sandbox(bigger_dataset, ports=FREE_PORTS) as running:
        put_faults(running, SLOW_AND_FAULTY)
        yield running


def _command(tmp_path: Path) -> list[str]:
    config = {
        "ops": {
            stream.key.replace("/", "__"): {"config": {"chunk_records": 150, "full_refresh": False}}
            for stream in ALL_STREAMS
        },
    }
    return [
        DAGSTER, "asset", "materialize", "-m", "integration_assets.definitions",
        "--select", ",".join(stream.key for stream in ALL_STREAMS),
        "--config-json", json.dumps(config),
    ]  # fmt: skip


def _environment(sandbox: Sandbox, warehouse_url: str, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    backoff = {"DAGSTER_HOME": str(home)}
    return {**os.environ, **sandbox_env(sandbox, warehouse_url), **backoff}


def _served(sandbox: Sandbox) -> int:
    stats = requests.get(f"{sandbox.url('hubspot')}/__sandbox__/stats", timeout=5).json()
    return sum(counts.get("requests", 0) for counts in stats.values())


def test_sigkill_mid_sync_then_rerun_gives_the_exact_result(
    slow_sandbox: Sandbox, warehouse_url: str, tmp_path: Path
) -> None:
    env = _environment(slow_sandbox, warehouse_url, tmp_path / "home")
    run = subprocess.Popen(
        _command(tmp_path), cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _served(slow_sandbox) < 30 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be killed: make the drill slower"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    warehouse = Warehouse.from_url(warehouse_url)
    assert differences(slow_sandbox, warehouse), "the kill came after the sync had finished"

    again = subprocess.run(_command(tmp_path), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert differences(slow_sandbox, warehouse) == {}
    cursors = dict(warehouse.query("SELECT stream, value FROM ops.cursors"))
    assert set(cursors) == {stream.key for stream in ALL_STREAMS}


def test_a_vendor_step_killed_takes_only_itself_down(dataset: Path, tmp_path: Path) -> None:
    """Zendesk answers slowly; its first step is SIGKILLed while it runs: HubSpot and Stripe land all the same,
    and the killed step is retried like any failed attempt."""
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox:
        put_faults(sandbox, "seed: 2\nzendesk:\n  latency_ms: [400, 500]\n")
        env = _environment(sandbox, str(tmp_path / "warehouse.duckdb"), tmp_path / "home")
        command = [DAGSTER, "job", "execute", "-m", "integration_assets.definitions", "-j", "integration_sync"]
        run = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[str] = []
        killed: list[str] = []

        def watch() -> None:  # the step's pid is in its log lines: "- <pid> - support__users - STEP_START"
            for line in run.stdout:  # type: ignore[union-attr]
                lines.append(line)
                started = re.search(r" - (\d+) - (support__\w+) - STEP_START", line)
                if started and not killed:
                    time.sleep(0.2)  # inside its first slow page
                    os.kill(int(started.group(1)), signal.SIGKILL)
                    killed.append(started.group(2))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        run.wait(timeout=600)
        watcher.join(timeout=10)
    log = "".join(lines)
    assert killed, log[-3000:]
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (record,) = instance.get_run_records()
        stats = {step.step_key: step for step in instance.get_run_step_stats(record.dagster_run.run_id)}
        crashes = [
            entry.user_message
            for entry in instance.all_logs(record.dagster_run.run_id)
            if entry.step_key == killed[0] and "terminated by signal 9" in entry.user_message
        ]
    succeeded = {key for key, step in stats.items() if step.status.value == "SUCCESS"}
    others = {stream.key.replace("/", "__") for stream in ALL_STREAMS if stream.role != "support"}
    assert others <= succeeded, sorted(others - succeeded)
    assert crashes, f"{killed[0]} was not killed while it ran"
    # the crash is a failed attempt like any other: the step's retry policy runs it again, and it lands
    assert stats[killed[0]].attempts == 2 and killed[0] in succeeded
    assert {"canonical__deals", "canonical__invoices", "canonical__payments"} <= succeeded
    assert run.returncode == 0
