"""How much of HubSpot's request budget a backfill spends on Celery workers, alone or sharing the budget in Redis.

The sandbox (its own process) limits HubSpot to 100 requests per rolling 10 s per token, the Free/Starter
private-app limit (`--faults` profile `hubspot: {rate_limit: {requests: 100, per_seconds: 10}}`), and announces
it in `X-HubSpot-RateLimit-*` headers as HubSpot does. A dataset of about `--records` HubSpot records (crm
contacts, companies and deals; about 100,000 by default) is backfilled by materializing the three HubSpot
streams with `dagster asset materialize` and `INTEGRATION_EXECUTOR=celery` (the production profile: steps on
Celery workers over RabbitMQ and Redis, the Dagster instance and the warehouse in PostgreSQL), three ways, each
from a fresh Dagster home, instance database, warehouse database, sandbox limiter and sandbox counters:

- `a`: one worker, each step pacing on its own (no `INTEGRATION_REDIS_URL`), the HubSpot pool at one slot;
- `b`: one worker, the budget shared in Redis (`INTEGRATION_REDIS_URL`), the HubSpot pool at three slots;
- `c`: three workers sharing the budget in Redis, the HubSpot pool at three slots, so the three streams' steps
  run at once.

Figures per way (requests are counted by the sandbox, `GET /__sandbox__/stats`, and cross-checked with the
call log `ops.api_calls`):

    budget used = requests sent / (100 x run seconds / 10)       target with three workers >= 95 %
    429 share   = requests answered 429 / requests sent           target with three workers <= 1 %

where the run's seconds are the Dagster run's own, RUN_START to RUN_SUCCESS (the steps' submission to Celery,
their start on a worker and their checks included; the interpreter's start and the code location's load are
not). `budget_used_calls` uses the span from the first request to the last instead. A run shorter than a few
windows overstates the share: the first window starts empty, so a run of T seconds may send up to
100 x ceil(T / 10) requests. Records landed are exact: every raw table's distinct ids must equal the ids the
sandbox serves (archived ones included: a first sync lists both).

    .venv/bin/python benchmarks/rate_limit_shared.py                      # ~100,000 records, ~2 min per way
    .venv/bin/python benchmarks/rate_limit_shared.py --records 20000      # a quick run
    .venv/bin/python benchmarks/rate_limit_shared.py --ways c --preload   # --include the code location as well

The workers' app imports the code location before its pool forks (`core/celery_app.py`, `include`); `--preload`
adds the same module with `--include` on the command line, as the figures before that change were taken.

It needs PostgreSQL (`--postgres`, an administrator's URL: databases are created and dropped), RabbitMQ and
Redis (the production profile's defaults, `INTEGRATION_CELERY_BROKER_URL` / `INTEGRATION_CELERY_BACKEND_URL`
when set) and the `production` extra installed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h

LIMIT, WINDOW_S = 100, 10
PROFILE = {"seed": 1, "hubspot": {"rate_limit": {"requests": LIMIT, "per_seconds": WINDOW_S}}}
TARGET_BUDGET, TARGET_429 = 0.95, 0.01
STREAMS = ("contacts", "companies", "deals")  # the sandbox's files under hubspot/, the raw tables raw.crm_<name>
SELECTION = ",".join(f"crm/{name}" for name in STREAMS)
HUBSPOT_RECORDS_PER_SCALE_UNIT = 4.93  # at seed 1; the exact count is read from the manifest
RUN_TIMEOUT_S = 1800.0
WORKER_READY_S = 90.0
CELERY_WORKER = ["-m", "celery", "-A", "integration_assets.core.celery_app", "worker"]


@dataclass(frozen=True)
class Way:
    name: str
    workers: int
    shared_budget: bool  # INTEGRATION_REDIS_URL set for the code location and every worker
    hubspot_slots: int  # the instance's concurrency pools' default limit
    description: str


WAYS = {
    "a": Way("a", 1, False, 1, "1 worker, each step paces alone"),
    "b": Way("b", 1, True, 3, "1 worker, budget shared in Redis"),
    "c": Way("c", 3, True, 3, "3 workers, budget shared in Redis"),
}


# -- PostgreSQL ----------------------------------------------------------------------------------------------
@contextmanager
def fresh_database(admin_url: str, label: str) -> Iterator[str]:
    """A new, empty database on the administrator's server (its URL), dropped at the end."""
    import psycopg2

    name = f"bench_shared_{label}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def instance_settings(database_url: str) -> dict[str, str]:
    """The `DAGSTER_PG_*` variables the project's dagster.yaml reads, for one database."""
    parts = urlsplit(database_url)
    return {
        "DAGSTER_PG_HOST": parts.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_DB": parts.path.lstrip("/"),
        "DAGSTER_PG_USER": parts.username or "postgres",
        "DAGSTER_PG_PASSWORD": parts.password or "",
    }


def production_home(folder: Path, slots: int) -> Path:
    """A Dagster home holding the project's dagster.yaml (the instance in PostgreSQL), with `slots` per pool."""
    folder.mkdir(parents=True)
    config = yaml.safe_load((h.ROOT / "dagster.yaml").read_text())
    config["concurrency"]["pools"]["default_limit"] = slots
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


# -- Celery workers ------------------------------------------------------------------------------------------
@contextmanager
def workers(count: int, prefix: str, env: dict[str, str], folder: Path, preload: bool) -> Iterator[list[str]]:
    """`count` workers (one step at a time each) on the HubSpot queue and the default one of `prefix`, in their
    own sessions, killed with everything they started when the block ends; the queues are deleted then.

    `preload`: each worker imports the code location before it forks its pool's child (`--include`), so the
    first step a child runs does not pay for that import (about 2 s here, more with several workers starting)."""
    queue_names = [f"{prefix}hubspot", f"{prefix}dagster"]
    processes: list[subprocess.Popen] = []
    nodes = [f"{prefix}{index}@localhost" for index in range(count)]
    try:
        for index, node in enumerate(nodes):
            command = [h.PYTHON, *CELERY_WORKER, "--queues", ",".join(queue_names), "--hostname", node]
            command += ["--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
            command += ["--include", h.CODE_LOCATION] if preload else []
            with (folder / f"worker_{index}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=h.ROOT, start_new_session=True
                    )
                )
        deadline = time.monotonic() + WORKER_READY_S
        for index, process in enumerate(processes):
            log = folder / f"worker_{index}.log"
            while "ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {nodes[index]} did not start:\n{h.log_tail(log)}")
                time.sleep(0.2)
        yield nodes
    finally:
        for process in processes:
            _stop(process)
        _delete_queues(env, queue_names)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _delete_queues(env: dict[str, str], queue_names: list[str]) -> None:
    from kombu import Connection

    from integration_assets.core.celery_app import broker_url

    with Connection(broker_url(env), connect_timeout=5) as connection:
        channel = connection.channel()
        for name in queue_names:
            channel.queue_delete(name)


# -- the shared budget's keys --------------------------------------------------------------------------------
def forget_shared_budget(hubspot_url: str, redis_url: str) -> int:
    """Deletes the Redis keys of the sandbox account's shared budget (what it sent, what HubSpot announced), so
    each way starts from an empty budget; they are named by the project's own resource. Returns keys deleted."""
    import redis

    from integration_assets.core.shared_pacing import SharedRequestBudget
    from integration_assets.systems import CATALOG
    from integration_assets.systems.crm.resource import HubSpotResource
    from integration_sandbox.credentials import DEFAULT_CREDENTIALS

    resource = HubSpotResource(
        base_url=hubspot_url,
        access_token=DEFAULT_CREDENTIALS["HUBSPOT_ACCESS_TOKEN"],
        rate_budget_redis_url=redis_url,
    )
    keys: set[str] = set()
    for connector in {stream.connector for stream in CATALOG.streams if stream.vendor == "hubspot"}:
        budget = resource.budget(connector)
        assert isinstance(budget, SharedRequestBudget)
        keys |= {budget.sent_key, budget.policy_key}
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.delete(*keys))
    finally:
        client.close()


# -- figures -------------------------------------------------------------------------------------------------
def sandbox_ids(data: Path) -> dict[str, set[str]]:
    """stream -> every id the sandbox serves (archived records included)."""
    return {
        name: {str(record["id"]) for record in json.loads((data / "hubspot" / f"{name}.json").read_text())}
        for name in STREAMS
    }


def landed(warehouse_url: str, expected: dict[str, set[str]]) -> dict[str, Any]:
    """Each raw table's distinct ids against the sandbox's: exact when both sets are equal."""
    from integration_assets.core.warehouse import Warehouse

    warehouse = Warehouse.from_url(warehouse_url)
    figures: dict[str, Any] = {"exact": True, "records": 0, "streams": {}}
    for name in STREAMS:
        try:
            ids = {str(row_id) for (row_id,) in warehouse.query(f"SELECT DISTINCT id FROM raw.crm_{name}")}
        except Exception as error:  # a table never created: the stream landed nothing
            ids, figures[f"{name}_error"] = set(), f"{type(error).__name__}: {error}"[:200]
        missing, extra = len(expected[name] - ids), len(ids - expected[name])
        figures["streams"][name] = {"landed": len(ids), "expected": len(expected[name]), "missing": missing}
        if extra:
            figures["streams"][name]["extra"] = extra
        figures["records"] += len(ids)
        figures["exact"] = figures["exact"] and not missing and not extra
    return figures


def call_log(warehouse_url: str) -> dict[str, Any]:
    """What the call log `ops.api_calls` says of HubSpot's requests: how many, how many 429, over what span."""
    from integration_assets.core.warehouse import Warehouse
    from integration_assets.systems.crm.client import HubSpot

    warehouse = Warehouse.from_url(warehouse_url)
    ((calls, limited, first, last),) = warehouse.query(
        "SELECT count(*), count(*) FILTER (WHERE status = 429), min(called_at), max(called_at) "
        "FROM ops.api_calls WHERE system = ?",
        [HubSpot.system],
    )
    if first is None or last is None:
        return {"calls": calls, "calls_429": limited, "span_s": None, "first_at": None}
    span_s = (last - first).total_seconds()
    return {"calls": calls, "calls_429": limited, "span_s": round(span_s, 2), "first_at": first.timestamp()}


def step_failures(home: Path, run_id: str | None) -> list[str]:
    """Why a step failed or was retried, as the instance recorded it (step: error), first line of each."""
    from dagster import DagsterInstance

    if run_id is None:
        return []
    found = []
    with DagsterInstance.from_config(str(home)) as instance:
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or event.event_type_value not in ("STEP_UP_FOR_RETRY", "STEP_FAILURE"):
                continue
            error = getattr(event.event_specific_data, "error", None)
            while error is not None and error.cause is not None:  # a retry request wraps the step's own error
                error = error.cause
            message = error.message if error is not None else entry.user_message
            found.append(f"{entry.step_key} {event.event_type_value}: {message.strip().splitlines()[0][:300]}")
    return found


def sandbox_counts(server: h.SandboxProcess) -> dict[str, int]:
    stats = server.stats()
    return {"requests": stats.get("requests", 0), "429": stats.get("status:429", 0)}


def reset_sandbox(server: h.SandboxProcess) -> None:
    """A fresh limiter (putting the profile again rebuilds it) and fresh counters."""
    requests.put(
        f"{server.urls['hubspot']}/__sandbox__/faults", data=json.dumps(PROFILE), timeout=10
    ).raise_for_status()
    server.reset_stats()


def share(numerator: float, denominator: float | None) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


# -- one way -------------------------------------------------------------------------------------------------
def measure(way: Way, server: h.SandboxProcess, data: Path, folder: Path, args: argparse.Namespace) -> dict:
    expected = sandbox_ids(data)
    with ExitStack() as stack:
        instance_db = stack.enter_context(fresh_database(args.postgres, f"{way.name}_instance"))
        warehouse_url = stack.enter_context(fresh_database(args.postgres, f"{way.name}_warehouse"))
        home = production_home(folder / way.name / "home", way.hubspot_slots)
        prefix = f"bench{way.name}{uuid.uuid4().hex[:8]}_"
        extra = {
            # the caller's broker and backend, if set (the environment is otherwise cleared of INTEGRATION_*)
            **{name: value for name, value in os.environ.items() if name.startswith("INTEGRATION_CELERY_")},
            "INTEGRATION_EXECUTOR": "celery",
            "INTEGRATION_CELERY_QUEUE_PREFIX": prefix,  # queues of this way's own
            **instance_settings(instance_db),
            # the workers import the code of this checkout, and keep it until they stop
            "PYTHONPATH": os.pathsep.join(filter(None, [str(h.ROOT), os.environ.get("PYTHONPATH")])),
        }
        if way.shared_budget:
            extra["INTEGRATION_REDIS_URL"] = args.redis
            forget_shared_budget(server.urls["hubspot"], args.redis)
        env = h.code_location_env(server.urls, home, warehouse_url, **extra)  # type: ignore[arg-type]
        stack.enter_context(workers(way.workers, prefix, env, folder / way.name, args.preload))
        reset_sandbox(server)
        command = [h.DAGSTER, "asset", "materialize", "-m", h.CODE_LOCATION, "--select", SELECTION]
        run = h.run_command(command, env=env, cwd=home, log=folder / way.name / "run.log", timeout=args.timeout)
        counts = sandbox_counts(server)
        for name, value in instance_settings(instance_db).items():  # dagster.yaml reads them when it loads
            os.environ[name] = value
        figures = h.run_figures(home, run.started_at, run.ended_at)
        retry_lines = step_failures(home, figures.get("run_id"))
        calls = call_log(warehouse_url)
        records = landed(warehouse_url, expected)
        if way.shared_budget:
            forget_shared_budget(server.urls["hubspot"], args.redis)
    run_s = figures.get("run_s")
    # where the run's seconds went besides requests: before its first request (steps submitted to Celery, taken
    # by a worker, started, their resources built) and after its last (checks, events, the run's end)
    first_request_s = last_request_s = None
    if run_s and figures.get("before_run_s") is not None and calls["first_at"] is not None:
        first_request_s = round(calls["first_at"] - (run.started_at + figures["before_run_s"]), 2)
        last_request_s = round(run_s - first_request_s - calls["span_s"], 2)
    allowed = LIMIT * run_s / WINDOW_S if run_s else None
    allowed_calls = LIMIT * calls["span_s"] / WINDOW_S if calls["span_s"] else None
    result = {
        "way": way.name,
        "description": way.description,
        "workers": way.workers,
        "shared_budget": way.shared_budget,
        "hubspot_slots": way.hubspot_slots,
        "workers_preload_code_location": args.preload,
        "returncode": run.returncode,
        "success": figures.get("success", False),
        "wall_s": run.wall_s,
        "run_s": run_s,
        "first_request_after_s": first_request_s,
        "run_end_after_last_request_s": last_request_s,
        "first_step_after_s": figures.get("first_step_after_s"),
        "requests": counts["requests"],
        "status_429": counts["429"],
        "budget_used": share(counts["requests"], allowed),
        "budget_used_answered": share(counts["requests"] - counts["429"], allowed),
        "budget_used_calls": share(counts["requests"], allowed_calls),
        "share_429": share(counts["429"], counts["requests"]),
        "records": records["records"],
        "records_exact": records["exact"],
        "landed": records["streams"],
        "call_log": calls,
        "step_s": figures.get("step_s"),
        "failed_steps": figures.get("failed_steps"),
        "retried_steps": figures.get("retried_steps"),
    }
    if run.returncode != 0:
        result["log_tail"] = h.log_tail(run.log, 15).splitlines()
    if retry_lines:
        result["retries"] = retry_lines
    return result


def markdown(results: list[dict[str, Any]], records: int, preload: bool) -> str:
    header = ["way", "workers", "budget", "budget used", "429 share", "run s", "wall s", "requests", "records", "exact"]
    lines = [
        f"HubSpot limited to {LIMIT} requests / {WINDOW_S} s; {records:,} records over {len(STREAMS)} streams"
        + ("; workers preload the code location:" if preload else ":"),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for result in results:
        row = [
            result["way"],
            result["workers"],
            "Redis" if result["shared_budget"] else "in-process",
            f"{100 * result['budget_used']:.1f} %" if result["budget_used"] is not None else "-",
            f"{100 * result['share_429']:.2f} %" if result["share_429"] is not None else "-",
            h.figure_text(result["run_s"]),
            h.figure_text(result["wall_s"]),
            h.figure_text(result["requests"]),
            h.figure_text(result["records"]),
            "yes" if result["records_exact"] else "NO",
        ]
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--records", type=int, default=100_000, help="HubSpot records in all, about")
    options.add_argument("--scale", type=int, help="the sandbox's --scale (wins over --records)")
    options.add_argument("--ways", default="a,b,c", help="which ways to run, of a, b, c")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an administrator's URL: each way's instance and warehouse databases are created and dropped there",
    )
    options.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="INTEGRATION_REDIS_URL of ways b, c")
    options.add_argument(
        "--preload",
        action="store_true",
        help="workers import the code location before forking (celery worker --include), not at their first step",
    )
    options.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, help="seconds before a run is killed")
    args = options.parse_args()
    names = [name.strip() for name in args.ways.split(",") if name.strip()]
    unknown = [name for name in names if name not in WAYS]
    if unknown or not names:
        options.error(f"--ways {args.ways!r}: choose among {', '.join(WAYS)}")
    scale = args.scale or max(1, round(args.records / HUBSPOT_RECORDS_PER_SCALE_UNIT))

    machine_before = h.machine()
    results = []
    with h.scratch("bench_rate_shared_") as tmp:
        folder = Path(tmp)
        manifest = h.generate(folder / "data", scale=scale, seed=args.seed)
        records = sum(manifest["counts"][f"hubspot/{name}"] for name in STREAMS)
        if records < 30 * LIMIT:
            print(f"{records} records: a run of a few windows overstates the budget used", file=sys.stderr)
        faults = folder / "faults.json"  # YAML is a superset of JSON
        faults.write_text(json.dumps(PROFILE))
        with h.sandbox(folder / "data", faults) as server:
            for name in names:
                result = measure(WAYS[name], server, folder / "data", folder, args)
                results.append(result)
                h.emit(result)

    summary: dict[str, Any] = {
        "benchmark": "rate_limit_shared",
        "commit": h.git_state(),
        "limit": f"{LIMIT} per {WINDOW_S} s rolling, per token",
        "scale": scale,
        "hubspot_records": records,
        "machine_before": machine_before,
        "machine_after": h.machine(),
        "targets": {"budget_used": f">= {TARGET_BUDGET} (way c)", "share_429": f"<= {TARGET_429} (way c)"},
    }
    for result in results:
        summary[result["way"]] = {
            "budget_used": result["budget_used"],
            "share_429": result["share_429"],
            "run_s": result["run_s"],
            "records_exact": result["records_exact"],
        }
    if "c" in summary:
        three = summary["c"]
        three["budget_met"] = (three["budget_used"] or 0) >= TARGET_BUDGET
        three["share_429_met"] = three["share_429"] is not None and three["share_429"] <= TARGET_429
    h.emit(summary)
    print()
    print(markdown(results, records, args.preload))
    return 0 if all(result["success"] and result["records_exact"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
