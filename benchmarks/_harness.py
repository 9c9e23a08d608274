"""What the benchmark scripts share: datasets, the sandbox as its own process, workers measured in subprocesses.

Every side of a comparison runs in a fresh Python process started by `run_worker`. The worker reports its own
peak resident set (`VmHWM` of /proc/self/status, which starts afresh at exec) and the parent reaps it with
`os.wait4` for its CPU seconds. (`ru_maxrss` of a child is not used: Linux carries the parent's high-water
mark over the fork into the child's figure.) The sandbox is another process (`integration-sandbox serve`),
started as users start it; its memory and CPU time are read from /proc and reported apart.

The user's path is measured differently: whole `dagster` commands (or a fresh interpreter calling
`execute_in_process`) are timed from process start to exit (`run_command`), each with a fresh Dagster home and
warehouse (`dagster_home`, `code_location_env`), and the run's own seconds and its steps' are read back from
that home's event log (`run_figures`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from integration_sandbox.generator import FILES

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HUBSPOT_TOKEN = "pat-sandbox"


def emit(figures: dict[str, Any]) -> None:
    """One JSON line of figures on stdout."""
    print(json.dumps(figures, sort_keys=False), flush=True)


def figure_text(value: Any, digits: int = 1) -> str:
    """A figure as the tables show it: thousands separated, floats to `digits` places, "-" when missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "python": sys.version.split()[0],
    }


# -- datasets -----------------------------------------------------------------------------------------------
def generate(folder: Path, *, scale: int, seed: int, defect_rate: float = 0.0) -> dict:
    """`integration-sandbox generate` in its own process (the generator's memory stays out of ours)."""
    command = [PYTHON, "-m", "integration_sandbox.cli", "generate", "--out", str(folder)]
    command += ["--seed", str(seed), "--scale", str(scale), "--defect-rate", str(defect_rate)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return json.loads((folder / "manifest.json").read_text())


def proc_memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set of a process, from /proc, in MB."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures["rss_mb" if name == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    return figures


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def contacts_only(folder: Path, records: int) -> int:
    """`_contacts_only` in its own process, so the parent never holds the dataset in memory."""
    command = [PYTHON, __file__, "contacts-only", str(folder), str(records)]
    subprocess.run(command, check=True, cwd=ROOT)
    return records


def _contacts_only(folder: Path, records: int) -> int:
    """Keeps the first `records` live HubSpot contacts and empties the other eight files.

    Listings then return exactly `records` contacts, whatever the reader asks about archived ones, so both
    sides of a comparison must land exactly that many distinct ids.
    """
    path = folder / "hubspot" / "contacts.json"
    live = [record for record in json.loads(path.read_text()) if not record.get("archived")]
    if len(live) < records:
        raise SystemExit(f"the dataset holds {len(live)} live contacts, fewer than {records}: raise --scale")
    path.write_text(json.dumps(live[:records], separators=(",", ":")))
    for name in FILES:
        if name != "hubspot/contacts":
            (folder / f"{name}.json").write_text("[]")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["counts"] = {name: (records if name == "hubspot/contacts" else 0) for name in FILES}
    manifest["archived"] = {"hubspot/contacts": 0}
    manifest["defects"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return records


# -- the sandbox ---------------------------------------------------------------------------------------------
@dataclass
class SandboxProcess:
    process: subprocess.Popen
    urls: dict[str, str]

    def memory_mb(self) -> dict[str, float]:
        """Current and peak resident set of the sandbox process."""
        return proc_memory_mb(self.process.pid)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.process.pid)

    def stats(self, vendor: str = "hubspot") -> dict[str, int]:
        return requests.get(f"{self.urls[vendor]}/__sandbox__/stats", timeout=10).json()[vendor]

    def reset_stats(self) -> None:
        requests.delete(f"{self.urls['hubspot']}/__sandbox__/stats", timeout=10).raise_for_status()


@contextmanager
def sandbox(data: Path, faults: Path | None = None) -> Iterator[SandboxProcess]:
    """`integration-sandbox serve` on free ports, in its own process, until the block ends."""
    command = [PYTHON, "-m", "integration_sandbox.cli", "serve", "--data", str(data)]
    command += ["--hubspot-port", "0", "--stripe-port", "0", "--zendesk-port", "0"]
    if faults is not None:
        command += ["--faults", str(faults)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        urls = dict(process.stdout.readline().split() for _ in range(3))
        yield SandboxProcess(process, urls)
    finally:
        process.terminate()
        process.wait()


def walk_hubspot(base_url: str, object_type: str, properties: str, archived: bool = False) -> int:
    """Reads a listing once with plain `requests`: fills the sandbox's rendered-page cache for this view, so
    whichever side runs first does not pay for the server's first rendering of each record."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {HUBSPOT_TOKEN}"
    params = {"limit": "100", "properties": properties, "archived": str(archived).lower()}
    count = 0
    while True:
        body = http.get(f"{base_url}/crm/v3/objects/{object_type}", params=params, timeout=60).json()
        count += len(body["results"])
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if after is None:
            return count
        params["after"] = after


# -- workers -------------------------------------------------------------------------------------------------
@dataclass
class WorkerRun:
    result: dict[str, Any]  # the worker's last stdout line, parsed (with its own `peak_rss_mb`)
    process_s: float  # wall time of the whole process, interpreter start to exit
    cpu_s: float  # user + system CPU seconds of that process (and any child it waited for)


def run_worker(arguments: list[str], *, wrap: list[str] | None = None, env: dict[str, str] | None = None) -> WorkerRun:
    """Runs `python <arguments>` (optionally under `wrap`, e.g. py-spy) and measures it.

    The worker prints its figures as one JSON line, last on stdout, with `peak_rss_mb` from
    `proc_memory_mb()` taken as it ends; its stderr passes through.
    """
    command = [*(wrap or []), PYTHON, *arguments]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"worker {arguments} exited {process.returncode}:\n{output[-2000:]}")
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return WorkerRun(json.loads(lines[-1]), round(elapsed, 2), round(usage.ru_utime + usage.ru_stime, 2))


def scratch(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder on the same disk as /tmp, removed at the end."""
    return tempfile.TemporaryDirectory(prefix=prefix)


# -- Dagster, as users run it -------------------------------------------------------------------------------
CODE_LOCATION = "integration_assets.definitions"
DAGSTER = str(Path(PYTHON).with_name("dagster"))
# What the code location reads from the environment: cleared before each command, then set for the sandbox,
# so that nothing of the caller's own settings (an .env, a production warehouse) leaks into a measurement.
CODE_LOCATION_ENV_PREFIXES = ("DAGSTER_HOME", "WAREHOUSE_", "INTEGRATION_", "HUBSPOT_", "STRIPE_", "ZENDESK_")


def dagster_home(folder: Path) -> Path:
    """A fresh Dagster home holding the quickstart's embedded instance (SQLite files, telemetry off)."""
    from integration_assets.quickstart import SQLITE_INSTANCE

    folder.mkdir(parents=True)
    text = SQLITE_INSTANCE if "telemetry:" in SQLITE_INSTANCE else SQLITE_INSTANCE + "telemetry:\n  enabled: false\n"
    (folder / "dagster.yaml").write_text(text)
    return folder


def code_location_env(urls: dict[str, str], home: Path, warehouse: Path, **extra: str) -> dict[str, str]:
    """The environment a user sets to point the code location at the sandbox (README, "Connecting the real
    vendors"): the sandbox's addresses and default credentials, a Dagster home and a DuckDB warehouse."""
    from integration_sandbox.credentials import DEFAULT_CREDENTIALS

    env = {k: v for k, v in os.environ.items() if not k.startswith(CODE_LOCATION_ENV_PREFIXES)}
    env.update({f"{vendor.upper()}_BASE_URL": url for vendor, url in urls.items()})
    env.update(DEFAULT_CREDENTIALS)
    env.update(DAGSTER_HOME=str(home), WAREHOUSE_URL=str(warehouse), **extra)
    return env


@dataclass
class CommandRun:
    command: list[str]
    wall_s: float  # the whole command, process start to exit
    started_at: float  # epoch seconds just before the process was started
    ended_at: float  # epoch seconds once it had exited
    returncode: int | None  # None: killed at the timeout
    log: Path  # its stdout and stderr


def run_command(command: list[str], *, env: dict[str, str], cwd: Path, log: Path, timeout: float) -> CommandRun:
    """Runs a command in its own session, output to `log`, and times it; at `timeout` its whole process group
    is killed (the run's step processes included)."""
    with log.open("w") as output:
        started_at, started = time.time(), time.perf_counter()
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = None
        wall_s = time.perf_counter() - started
    return CommandRun(command, round(wall_s, 2), started_at, time.time(), returncode, log)


def log_tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


STEP_ENDS = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY")


def run_figures(home: Path, since: float, until: float) -> dict[str, Any]:
    """What the instance in `home` recorded of the one run a command started at `since` and ended at `until`
    (epoch seconds) made: its
    duration (RUN_START to RUN_SUCCESS or RUN_FAILURE), its steps (STEP_START to STEP_SUCCESS, STEP_FAILURE or
    STEP_UP_FOR_RETRY, summed over attempts), how long the executor took to start them (STEP_WORKER_STARTING
    to STEP_START, when the executor reports it; `step_s` has every step's seconds), the checks' outcomes, and
    each source materialization's `api_calls` (requests it made)."""
    from dagster import DagsterInstance, RunsFilter

    from integration_assets.core.dagster_adapter import run_events

    with DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(RunsFilter(created_after=_utc(since - 1)), limit=2)
        if len(records) != 1:
            return {"run_id": None, "runs_found": len(records)}
        run = records[0].dagster_run
        events = run_events(instance, run.run_id)
        status = run.status.value
    by_type: dict[str, list] = {}
    for entry in events:
        if entry.dagster_event is not None:
            by_type.setdefault(entry.dagster_event.event_type.name, []).append(entry)
    run_start = next((e.timestamp for e in by_type.get("RUN_START", [])), None)
    run_end = next((e.timestamp for kind in ("RUN_SUCCESS", "RUN_FAILURE") for e in by_type.get(kind, [])), None)
    steps: dict[str, float] = {}
    open_steps: dict[str, float] = {}
    worker_starting: dict[str, float] = {}
    launch_s = 0.0
    for entry in sorted(events, key=lambda e: e.timestamp):
        kind = entry.dagster_event.event_type.name if entry.dagster_event is not None else None
        if kind == "STEP_WORKER_STARTING":
            worker_starting.setdefault(entry.step_key, entry.timestamp)
        elif kind == "STEP_START":
            open_steps[entry.step_key] = entry.timestamp
            if entry.step_key in worker_starting:
                launch_s += entry.timestamp - worker_starting.pop(entry.step_key)
        elif kind in STEP_ENDS and entry.step_key in open_steps:
            steps[entry.step_key] = steps.get(entry.step_key, 0.0) + entry.timestamp - open_steps.pop(entry.step_key)
    checks = [e.dagster_event.event_specific_data for e in by_type.get("ASSET_CHECK_EVALUATION", [])]
    source_calls = {}
    for entry in by_type.get("ASSET_MATERIALIZATION", []):
        materialization = entry.dagster_event.event_specific_data.materialization
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        if "api_calls" in metadata and "mode" in metadata:  # a source stream's sync
            source_calls[materialization.asset_key.to_user_string()] = {
                "mode": metadata["mode"],
                "api_calls": metadata["api_calls"],
                "fetched": metadata.get("fetched"),
            }
    starts = [e.timestamp for e in by_type.get("STEP_START", [])]
    return {
        "run_id": run.run_id,
        "status": status,
        "success": status == "SUCCESS",
        "run_s": round(run_end - run_start, 2) if run_start and run_end else None,
        "before_run_s": round(run_start - since, 2) if run_start else None,  # process start, code load, run set-up
        "first_step_after_s": round(min(starts) - run_start, 2) if starts and run_start else None,
        "after_run_s": round(until - run_end, 2) if run_end else None,  # the command's exit after the run's end
        "steps": len(steps),
        "step_s_sum": round(sum(steps.values()), 2),
        "step_s_max": round(max(steps.values()), 2) if steps else 0.0,
        "slowest_steps": dict(sorted(((k, round(v, 2)) for k, v in steps.items()), key=lambda kv: -kv[1])[:5]),
        "step_s": {k: round(v, 2) for k, v in steps.items()},  # every step, in the order they ended
        "step_launch_s_sum": round(launch_s, 2),
        "failed_steps": sorted({e.step_key for e in by_type.get("STEP_FAILURE", [])}),
        "retried_steps": len(by_type.get("STEP_UP_FOR_RETRY", [])),
        "skipped_steps": len(by_type.get("STEP_SKIPPED", [])),
        "checks": len(checks),
        "checks_failed": sum(not c.passed for c in checks),
        "failed_checks": sorted(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed),
        "materializations": len(by_type.get("ASSET_MATERIALIZATION", [])),
        "source_calls": source_calls,
    }


def _utc(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC)


def git_state() -> str:
    """The commit measured, and whether the working tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    commit = head.stdout.strip() or "unknown commit"
    return f"{commit} + working tree in progress" if dirty.stdout.strip() else commit


if __name__ == "__main__":  # helpers that must not run in the measuring parent's memory
    if sys.argv[1:2] == ["contacts-only"]:
        _contacts_only(Path(sys.argv[2]), int(sys.argv[3]))
