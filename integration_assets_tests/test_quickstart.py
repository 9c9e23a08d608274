"""The README's first command, as a user runs it: it prints every check's outcome, the planted reconciliation
defects among the failed ones (by id), and the alerts the sensors sent, in a screenful: Dagster's run logs go
to a file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from integration_assets import quickstart
from integration_assets_tests.testing import PROJECT


def test_quickstart_prints_the_checks_outcome_and_the_alerts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "WAREHOUSE_URL": str(tmp_path / "warehouse.duckdb"),
        "INTEGRATION_CONFIG_DIR": str(tmp_path / "config"),  # isolated from the checkout's data/
    }
    (tmp_path / "config").mkdir()
    env.pop("DAGSTER_PG_HOST", None)
    command = [sys.executable, "-m", "integration_assets.quickstart", "--data", str(tmp_path / "data")]
    command += ["--seed", "7", "--scale", "60", "--defect-rate", "0.3", "--dotenv", str(tmp_path / ".env")]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    printed = (done.stdout + done.stderr).splitlines()
    assert len(printed) <= 60, "\n".join(printed)  # the demo dataset prints about 50 lines, this one fewer
    log = tmp_path / "home" / quickstart.LOG_NAME
    assert f"Dagster's run logs go to {log}" in out
    assert " - dagster - DEBUG - " not in done.stdout + done.stderr
    logged = log.read_text()
    for job in ("integration_sync", "reconciliation", "health"):
        head, checks = out.split(f"{job}: run ")[1].splitlines()[:2]  # as the job ends: status, checks, duration
        assert re.fullmatch(r"[0-9a-f-]{36}: succeeded", head), head
        assert re.fullmatch(r"  checks: \d+ passed, \d+ failed; \d+\.\d s", checks), checks
        assert f'RUN_START - Started execution of run for "{job}"' in logged
        assert f'RUN_SUCCESS - Finished execution of run for "{job}"' in logged
    assert logged.count(" - dagster - DEBUG - ") > 100  # every event the console would have shown
    assert out.count("  checks: ") == 3
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    failed = [line for line in out.splitlines() if line.startswith("    FAILED: ")]
    planted = [d for d in manifest["defects"] if d["expected"] == "reconciliation"]
    assert planted
    for defect in planted:
        assert any(str(defect["id"]) in line for line in failed), (defect, failed)
    opened = [line for line in out.splitlines() if line.startswith("  CRITICAL to ")]
    assert out.count("alerts: ") == 1 and len(opened) == len(failed)
    assert (tmp_path / "home" / "alerts.jsonl").read_text().count('"notice": "opened"') == len(opened)
    assert f"INTEGRATION_CONFIG_DIR={tmp_path / 'config'} overrides: none" in out
    assert f"INTEGRATION_CONFIG_DIR={tmp_path / 'config'}\n" in (tmp_path / ".env").read_text()


def test_from_a_checkout_the_configuration_folder_is_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart points INTEGRATION_CONFIG_DIR at the checkout's data/, and adds it to an older .env."""
    monkeypatch.delenv("INTEGRATION_CONFIG_DIR", raising=False)
    assert quickstart.config_folder() == str(PROJECT / "data")
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(PROJECT / "data"))
    monkeypatch.setenv("WAREHOUSE_URL", str(tmp_path / "warehouse.duckdb"))
    dotenv = tmp_path / ".env"
    dotenv.write_text("DAGSTER_HOME=/elsewhere\n")  # an operator's own, or an older quickstart's
    quickstart.write_dotenv(dotenv, tmp_path / "home")
    quickstart.write_dotenv(dotenv, tmp_path / "home")
    assert dotenv.read_text() == f"DAGSTER_HOME=/elsewhere\nINTEGRATION_CONFIG_DIR={PROJECT / 'data'}\n"
