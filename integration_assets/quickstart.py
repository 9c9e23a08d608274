"""The README's first command: a dataset, the sandbox, every asset materialized, and a short report.

Safe to run twice: the dataset is made once, the Dagster instance and warehouse live in the project folder.
Dagster's own run logs (hundreds of DEBUG lines) go to `quickstart.log` in the instance folder, so the terminal
shows one line per job as it ends and the report; `scripts/screenshots.py` starts the same pieces.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from integration_sandbox.credentials import DEFAULT_CREDENTIALS

if TYPE_CHECKING:
    from dagster import LoggerDefinition

PROJECT = Path(__file__).resolve().parent.parent
SANDBOX_CREDENTIALS = DEFAULT_CREDENTIALS  # the sandbox defines them; the quickstart hands them to Dagster
DEFAULT_PORTS = {"hubspot": 8701, "stripe": 8702, "zendesk": 8703}


@contextmanager
def running_sandbox(data: Path, faults: str | None) -> Iterator[dict[str, str]]:
    """Starts `integration-sandbox serve` on free ports; yields {vendor: base URL}."""
    command = [sys.executable, "-m", "integration_sandbox.cli", "serve", "--data", str(data)]
    command += ["--hubspot-port", "0", "--stripe-port", "0", "--zendesk-port", "0"]
    if faults:
        command += ["--faults", faults]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        urls = {}
        while len(urls) < len(DEFAULT_PORTS):
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the sandbox stopped before serving (exit code {process.wait()})")
            vendor, url = line.split()
            urls[vendor] = url
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=10)


def ensure_dataset(data: Path, seed: int = 1, scale: int = 200, defect_rate: float = 0.05) -> dict:
    """The sandbox dataset in `data`, generated on first use (the defaults are the demo dataset); its manifest."""
    if not (data / "manifest.json").exists():
        from integration_sandbox.generator import generate

        generate(data, seed=seed, scale=scale, defect_rate=defect_rate)
    return json.loads((data / "manifest.json").read_text())


def use_sandbox(urls: dict[str, str]) -> None:
    """Points this process (and the Dagster processes it starts) at the running sandbox, with its credentials."""
    for vendor, url in urls.items():
        os.environ[f"{vendor.upper()}_BASE_URL"] = url
    for name, value in SANDBOX_CREDENTIALS.items():
        os.environ.setdefault(name, value)


def check_sandbox(urls: dict[str, str], manifest: dict) -> list[str]:
    """What each vendor serves against what the generator wrote."""
    from integration_assets.systems import CATALOG

    lines = []
    for system in CATALOG.systems:
        vendor = system.vendor
        for object_type in (stream.object_type for stream in system.streams):
            served = requests.get(f"{urls[vendor]}/__sandbox__/records/{object_type}", timeout=60).json()
            expected = manifest["counts"][f"{vendor}/{object_type}"]
            mark = "ok" if len(served) == expected else "MISMATCH"
            lines.append(f"  {vendor + '/' + object_type:<24} {len(served):>7} records  {mark}")
    return lines


JOBS = ("integration_sync", "reconciliation", "health")  # in order: data, then what is checked across it


def _materializations(result) -> list[str]:
    lines = []
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        meta = {name: value.value for name, value in materialization.metadata.items()}
        head = f"  {materialization.asset_key.to_user_string():<22} {meta.get('dagster/row_count', '?'):>7} rows"
        if "mode" in meta:  # a source stream
            lines.append(
                f"{head}  ({meta['mode']}: {meta['fetched']} fetched, {meta['inserted']} new,"
                f" {meta['updated']} updated, {meta['api_calls']} calls, {meta['retries']} retries)"
            )
        elif "dagster/row_count" in meta:
            taken_in = sum(v for k, v in meta.items() if k.endswith("_records_in"))
            accepted = sum(v for k, v in meta.items() if k.endswith("_accepted"))
            in_review = sum(v for k, v in meta.items() if k.endswith("_in_review"))
            lines.append(f"{head}  ({taken_in} in, {accepted} accepted, {in_review} to review)" if taken_in else head)
        else:
            lines.append(f"  {materialization.asset_key.to_user_string()} materialized")
    return lines


def _checks(result) -> tuple[list[str], list[str]]:
    """Every check's outcome: the names of the passed ones, a line for each failed one with its summary."""
    from dagster import DagsterEventType

    checks = [
        e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    passed, failed = [], []
    for check in sorted(checks, key=lambda c: (c.asset_key.to_user_string(), c.check_name)):
        if check.passed:
            passed.append(check.check_name)
            continue
        summary, ids = check.metadata.get("summary"), check.metadata.get("sample_ids")
        text = summary.value if summary is not None else (check.description or "")
        if ids is not None and ids.value:
            text = f"{text} [{ids.value}]"
        level = "warning" if check.severity.value == "WARN" else "FAILED"
        failed.append(f"    {level}: {check.asset_key.to_user_string()} {check.check_name}: {text[:300]}")
    return passed, failed


def _passed_by_name(passed: list[str]) -> list[str]:
    """The passed checks on one line, counted by check name (one per asset would be dozens of lines)."""
    if not passed:
        return []
    names = (f"{name} x{n}" if n > 1 else name for name, n in sorted(Counter(passed).items()))
    return ["    passed: " + ", ".join(names)]


def _alerts(instance) -> list[str]:
    """One tick of every alert sensor, as the daemon would run it: what was sent, and where."""
    from dagster import build_sensor_context

    from integration_assets.core.resources import WarehouseResource
    from integration_assets.monitoring.alerts import load_alerts
    from integration_assets.monitoring.run_checks import run_check_tags
    from integration_assets.monitoring.sensors import sensors as alert_sensors

    warehouse = WarehouseResource(url=os.environ["WAREHOUSE_URL"])
    for sensor in [*alert_sensors, run_check_tags]:
        tick = sensor.evaluate_tick(build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
        for event in tick.asset_events:  # `ops/alerts`, recorded as the daemon records a sensor's asset events
            instance.report_runless_asset_event(event)
    alerts = load_alerts(warehouse.open())
    opened = [a for a in alerts if a["status"] == "open"]
    lines = [f"alerts: {len(opened)} open (sent to {Path(instance.root_directory) / 'alerts.jsonl'})"]
    for alert in opened:
        what = alert["check_name"] or alert["kind"]
        where = f"{alert['asset']} {what}" if alert["asset"] else f"job {alert['job']}"
        lines.append(f"  {alert['severity']} to {alert['owner']}: {where}: {alert['summary'][:160]}")
    return lines


LOG_NAME = "quickstart.log"  # in the instance folder, beside the run storage it describes
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # what Dagster's console logger prints


def file_logger(handler: logging.Handler) -> LoggerDefinition:
    """A Dagster logger writing a run's log lines (DEBUG and up, as the console logger would) to `handler`.

    The jobs run in this process, where Dagster's default console logger would print every event to the
    terminal; the same lines, in a file, are there for whoever needs them and out of the report's way."""
    from dagster import logger

    @logger(description="The quickstart's run logs, in a file instead of the terminal.")
    def _file_logger(_context) -> logging.Logger:
        file_log = logging.Logger("dagster", level=logging.DEBUG)
        file_log.addHandler(handler)
        return file_log

    return _file_logger


def _quiet_line(line: str) -> None:
    """The default for `progress`: nothing shown while the jobs run, the caller has the lines at the end."""


def run_jobs(
    names: tuple[str, ...] = JOBS,
    log_file: Path | None = None,
    progress: Callable[[str], None] = _quiet_line,
    evaluate_alerts: bool = True,
) -> list[str]:
    """Runs the jobs as the UI would (recorded in the instance); returns the report lines.

    Each line also goes to `progress` as soon as it is known: a job's lines (status, duration, checks passed and
    failed, then the details) when the job ends. Dagster's run logs are appended to `log_file` (to the console
    when None). Without `evaluate_alerts` the alert sensors are left to a running daemon, whose ticks the UI
    shows (one evaluated here would not be recorded as a tick)."""
    from dagster import DagsterEventType, DagsterInstance, Definitions

    handler, run_config = None, {}
    warnings_log = logging.getLogger("py.warnings")
    if log_file is not None:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.captureWarnings(True)  # Dagster's beta and deprecation warnings go to the file too
        warnings_log.addHandler(handler)
        warnings_log.propagate = False
        run_config = {"loggers": {"file": {}}}  # a logger with config replaces the console logger

    from integration_assets.core.resources import WarehouseResource
    from integration_assets.definitions import defs as project_defs

    definitions = project_defs
    if handler is not None:
        definitions = Definitions.merge(project_defs, Definitions(loggers={"file": file_logger(handler)}))
    lines: list[str] = []

    def report(*new: str) -> None:
        for line in new:
            lines.append(line)
            progress(line)

    try:
        with DagsterInstance.get() as instance:
            for name in names:
                started = time.monotonic()
                result = definitions.resolve_job_def(name).execute_in_process(
                    run_config=run_config, instance=instance, raise_on_error=False
                )
                seconds = time.monotonic() - started
                passed, failed = _checks(result)
                status = "succeeded" if result.success else "FAILED"
                report(f"{name}: run {result.run_id}: {status}")  # the form scripts and tests look for
                report(f"  checks: {len(passed)} passed, {len(failed)} failed; {seconds:.1f} s")
                report(*_materializations(result))
                for event in result.all_events:
                    if event.event_type == DagsterEventType.STEP_FAILURE:
                        message = event.event_specific_data.error.message.strip()[:300]
                        report(f"  FAILED {event.step_key}: {message}")
                report(*_passed_by_name(passed), *failed)
            if evaluate_alerts:
                with ExitStack() as stack:
                    if log_file is not None:  # the sensors' tick log (alerts opened, …): the report lists them
                        stack.enter_context(redirect_stderr(stack.enter_context(log_file.open("a"))))
                    alert_lines = _alerts(instance)
                report(*alert_lines)
    finally:
        if handler is not None:
            logging.captureWarnings(False)
            warnings_log.removeHandler(handler)
            handler.close()
    warehouse = WarehouseResource(url=os.environ["WAREHOUSE_URL"]).open()
    if warehouse.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' AND table_name = 'review_queue'"
    )[0][0]:
        open_items = warehouse.query("SELECT count(*) FROM ops.review_queue WHERE status = 'open'")[0][0]
        report(f"review queue: {open_items} open items")
    return lines


SQLITE_INSTANCE = """\
# The embedded instance of the quickstart: SQLite files in this folder. Written by integration_assets.quickstart;
# for PostgreSQL, set DAGSTER_PG_HOST (and the other DAGSTER_PG_* variables) and run the quickstart again.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    default_limit: 1
run_monitoring:  # as in the project's dagster.yaml, which says why: a dead run's pool slots are freed
  enabled: true
  max_runtime_seconds: 14400
  free_slots_after_run_end_seconds: 60
  poll_interval_seconds: 60
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
telemetry:
  enabled: false
"""


def prepare_instance(home: Path) -> str:
    """The quickstart's Dagster home: PostgreSQL (the project's dagster.yaml) when configured, else SQLite."""
    home.mkdir(parents=True, exist_ok=True)
    if os.environ.get("DAGSTER_PG_HOST"):
        (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
        return f"PostgreSQL at {os.environ['DAGSTER_PG_HOST']}"
    (home / "dagster.yaml").write_text(SQLITE_INSTANCE)
    return f"SQLite in {home}"


def config_folder() -> str | None:
    """The operator's configuration folder: INTEGRATION_CONFIG_DIR, else `data/` when run from a checkout."""
    if os.environ.get("INTEGRATION_CONFIG_DIR"):
        return os.environ["INTEGRATION_CONFIG_DIR"]
    if (PROJECT / "pyproject.toml").is_file() and (PROJECT / "data").is_dir():
        return str(PROJECT / "data")
    return None  # an installed package outside a checkout: the packaged defaults


def describe_configuration() -> str:
    """Where the configuration comes from: the packaged defaults, and which of them the operator's folder overrides."""
    from integration_assets.core.config import config_dir, config_files, default_path

    line = f"configuration: packaged defaults in {default_path(config_files()[0]).parent}"
    folder = config_dir()
    if folder is None:
        return line
    overridden = [name for name in config_files() if (folder / name).is_file()]
    return f"{line}; INTEGRATION_CONFIG_DIR={folder} overrides: {', '.join(overridden) or 'none'}"


def write_dotenv(path: Path, home: Path) -> None:
    """`dagster dev` reads .env from the folder it starts in: point it at the quickstart's home, sandbox and
    configuration folder. An existing .env is kept as it is, but for the configuration folder added when it
    has none (written by an earlier quickstart)."""
    config = os.environ.get("INTEGRATION_CONFIG_DIR")
    if path.exists():
        text = path.read_text()
        if config and not any(line.startswith("INTEGRATION_CONFIG_DIR=") for line in text.splitlines()):
            path.write_text(f"{text.rstrip()}\nINTEGRATION_CONFIG_DIR={config}\n".lstrip())
        return
    lines = [f"DAGSTER_HOME={home}", f"WAREHOUSE_URL={os.environ['WAREHOUSE_URL']}"]
    lines += [f"INTEGRATION_CONFIG_DIR={config}"] if config else []
    lines += [f"{vendor.upper()}_BASE_URL=http://127.0.0.1:{port}" for vendor, port in DEFAULT_PORTS.items()]
    lines += [f"{name}={value}" for name, value in SANDBOX_CREDENTIALS.items()]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--data", default=str(PROJECT / ".sandbox" / "data"), help="sandbox dataset folder")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--scale", type=int, default=200)
    options.add_argument("--defect-rate", type=float, default=0.05)
    options.add_argument("--faults", help="fault profile YAML for the sandbox")
    options.add_argument(
        "--dotenv", default=str(PROJECT / ".env"), help="where to write the settings for `dagster dev`"
    )
    args = options.parse_args(argv)

    data = Path(args.data)
    manifest = ensure_dataset(data, seed=args.seed, scale=args.scale, defect_rate=args.defect_rate)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT / ".dagster_home")))
    os.environ.setdefault("WAREHOUSE_URL", str(PROJECT / ".warehouse" / "integration.duckdb"))
    folder = config_folder()
    if folder:
        os.environ["INTEGRATION_CONFIG_DIR"] = folder
    storage = prepare_instance(home)
    write_dotenv(Path(args.dotenv), home)
    log_file = home / LOG_NAME
    log_file.write_text("")  # this run's logs only

    with running_sandbox(data, args.faults) as urls:
        use_sandbox(urls)
        print(f"dagster instance: {storage}; warehouse: {os.environ['WAREHOUSE_URL']}")
        print(describe_configuration())
        print(f"sandbox dataset {data} (seed {manifest['seed']}, {len(manifest['defects'])} planted defects)")
        print("\n".join(check_sandbox(urls, manifest)))
        print(f"running {', '.join(JOBS)}; Dagster's run logs go to {log_file}", flush=True)
        run_jobs(JOBS, log_file=log_file, progress=lambda line: print(line, flush=True))
    print(
        "\nOpen the Dagster UI (settings come from .env):\n"
        f"  .venv/bin/integration-sandbox serve --data {data} &\n"
        "  .venv/bin/dagster dev        # then open http://127.0.0.1:3000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
