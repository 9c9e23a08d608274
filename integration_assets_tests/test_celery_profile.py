"""The production profile: `integration_sync` with its steps on two Celery workers (real processes on the
machine's RabbitMQ and Redis), the Dagster instance and the warehouse on PostgreSQL, run as users run it
(`dagster job execute` with `INTEGRATION_EXECUTOR=celery`): every raw and canonical table comes out as an
in-process run's on the same dataset, also when a worker is SIGKILLed mid-step.

Each test has its own queues (a unique `INTEGRATION_CELERY_QUEUE_PREFIX`), deleted at the end, and its own
databases; the workers run in their own sessions and are killed with everything they started.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from dagster import DagsterInstance, EventLogEntry

from integration_assets.core.celery_app import (
    BACKEND_ENV,
    BROKER_ENV,
    DEFAULT_BACKEND_URL,
    DEFAULT_BROKER_URL,
    celery_settings,
)
from integration_assets.core.celery_app import app as worker_app
from integration_assets.core.executor import EXECUTOR_ENV, executor_from_env
from integration_assets.core.queues import QUEUE_PREFIX_ENV, QUEUE_TAG, queues
from integration_assets.core.warehouse import Warehouse
from integration_assets.definitions import defs
from integration_assets.systems import CATALOG
from integration_assets_tests.testing import DAGSTER, POSTGRES, PROJECT, fresh_postgres_database
from integration_assets_tests.testing.processes import process_group, wait_for
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults
from integration_assets_tests.testing.sync import sandbox_env
from integration_sandbox.server import Sandbox

SYNC = [DAGSTER, "job", "execute", "-m", "integration_assets.definitions", "-j", "integration_sync"]
RUN_SECONDS = 300  # a run of the small dataset takes well under a minute; a hung one fails the test
# when and by which run a row was written (a Stripe record's version is when it was fetched: Stripe has no
# modification time)
RUN_BOUND = {"loaded_at", "run_id", "version"}
# the canonical model (the build's own bookkeeping, keyed by the raw versions, is left out)
CANONICAL = ("customers", "contacts", "deals", "invoices", "payments", "tickets", "customer_360", "record_map")
VENDORS = [system.vendor for system in CATALOG.systems]
VENDOR_OF_STEP = {stream.key.replace("/", "__"): stream.vendor for stream in CATALOG.streams}


def _tables(warehouse_url: str) -> dict[str, list[tuple]]:
    """Every raw table and every table of the canonical model, row for row in a stable order, without the
    columns saying when and by which run a row was written."""
    warehouse = Warehouse.from_url(warehouse_url)
    names = [
        (schema, table)
        for schema, table in warehouse.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'canonical') ORDER BY 1, 2"
        )
        if schema == "raw" or table in CANONICAL
    ]
    tables = {}
    for schema, table in names:
        columns = [
            name
            for (name,) in warehouse.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [schema, table],
            )
            if name not in RUN_BOUND
        ]
        selected = ", ".join(f'"{name}"::text' for name in columns)
        rows = warehouse.query(f'SELECT {selected} FROM {schema}."{table}"')
        tables[f"{schema}.{table}"] = sorted(rows, key=lambda row: [(value is None, value or "") for value in row])
    return tables


def _difference(expected: dict[str, list[tuple]], actual: dict[str, list[tuple]]) -> dict[str, str]:
    """What differs, table by table (rows missing, rows extra), short enough to read in a failure."""
    found = {}
    for table in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(table), actual.get(table)
        if want is None or got is None:
            found[table] = "missing" if got is None else "unexpected"
        elif want != got:
            missing, extra = set(want) - set(got), set(got) - set(want)
            example = f"; e.g. missing {min(missing)!r:.300}" if missing else f"; e.g. extra {min(extra)!r:.300}"
            found[table] = (
                f"{len(want)} rows expected, {len(got)} found; missing {len(missing)}, extra {len(extra)}{example}"
            )
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
    with process_group(command, cwd, env, log) as run:
        return run.wait(timeout=RUN_SECONDS)


@pytest.fixture(scope="module", autouse=True)
def broker_and_backend() -> None:
    """RabbitMQ and Redis answer, or the tests fail at once saying which is missing (`.ci/run` starts both)."""
    import redis
    from kombu import Connection

    try:
        with Connection(DEFAULT_BROKER_URL, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=2)
    except Exception as error:  # any failure to connect is the same finding
        pytest.fail(f"RabbitMQ does not answer at {DEFAULT_BROKER_URL}: {error}")
    try:
        redis.Redis.from_url(DEFAULT_BACKEND_URL, socket_timeout=5).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis does not answer at {DEFAULT_BACKEND_URL}: {error}")


def test_the_celery_executor_and_its_workers_share_one_configuration() -> None:
    executor = executor_from_env({EXECUTOR_ENV: "celery", QUEUE_PREFIX_ENV: "staging_"})
    assert executor.name == "celery_executor"
    settings = celery_settings({QUEUE_PREFIX_ENV: "staging_"})
    assert settings["task_default_queue"] == "staging_dagster"
    execute_plan = worker_app.tasks["execute_plan"]  # the task the run sends, as the workers run it
    assert execute_plan.acks_late and execute_plan.reject_on_worker_lost
    assert worker_app.conf.worker_prefetch_multiplier == 1
    assert worker_app.conf.include == ["integration_assets.definitions"]  # loaded once, before the pool forks
    sync = defs.resolve_job_def("integration_sync")
    tags = {node.name: node.tags.get(QUEUE_TAG) for node in sync.graph.node_dict.values()}
    assert {name: queue for name, queue in tags.items() if name in VENDOR_OF_STEP} == VENDOR_OF_STEP
    assert {queue for name, queue in tags.items() if name not in VENDOR_OF_STEP} == {None}, "the default queue"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (BROKER_ENV, "redis://127.0.0.1:6379/1", r"INTEGRATION_CELERY_BROKER_URL=redis://… is no RabbitMQ URL"),
        (BACKEND_ENV, "rpc://", r"INTEGRATION_CELERY_BACKEND_URL=rpc://… is no Redis URL"),
        (BROKER_ENV, "127.0.0.1:5672", r"INTEGRATION_CELERY_BROKER_URL='127.0.0.1:5672' is no RabbitMQ URL"),
    ],
)
def test_a_url_of_the_wrong_kind_is_refused_naming_its_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        executor_from_env({EXECUTOR_ENV: "celery", variable: value})


@pytest.fixture(scope="module")
def shared_sandbox(dataset: Path) -> Iterator[Sandbox]:
    """Read only by the runs here: one sandbox for the in-process run and the Celery one."""
    with Sandbox(dataset, ports=FREE_PORTS) as running:
        yield running


@pytest.fixture(scope="module")
def in_process_tables(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """The reference: `integration_sync` in process (the `dagster` CLI), on a PostgreSQL warehouse of its own."""
    home = tmp_path_factory.mktemp("in_process_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with fresh_postgres_database() as warehouse_url:
        env = {
            **os.environ,
            **sandbox_env(shared_sandbox, warehouse_url),
            "DAGSTER_HOME": str(home),
            "INTEGRATION_EXECUTOR": "in_process",
        }
        log = home / "run.log"
        assert _run(SYNC, home, env, log) == 0, log.read_text()[-3000:]
        tables = _tables(warehouse_url)
    assert any(rows for table, rows in tables.items() if table.startswith("raw.")), tables.keys()
    assert any(rows for table, rows in tables.items() if table.startswith("canonical.")), tables.keys()
    return tables


@dataclass
class Deployment:
    """The production profile on this machine: its environment, its warehouse and its running workers."""

    env: dict[str, str]
    home: Path
    warehouse_url: str
    workers: dict[str, Any]  # node name -> Popen of the worker's session
    app: Celery  # a client of the same broker, to ask the workers what they run

    def run_sync(self) -> tuple[int, str]:
        log = self.home / "run.log"
        return _run(SYNC, self.home, self.env, log), log.read_text()

    @contextmanager
    def instance(self) -> Iterator[DagsterInstance]:
        with pytest.MonkeyPatch.context() as patch:  # dagster.yaml reads its connection from the environment
            for name in POSTGRES:
                patch.setenv(name, self.env[name])
            with DagsterInstance.from_config(str(self.home)) as instance:
                yield instance

    def run_log(self) -> list[EventLogEntry]:
        """The event log of the one run, read from the instance as the UI reads it."""
        with self.instance() as instance:
            (record,) = instance.get_run_records()
            return list(instance.all_logs(record.dagster_run.run_id))

    def held_slots(self) -> dict[str, int]:
        """vendor pool -> the slots still claimed in it."""
        with self.instance() as instance:
            storage = instance.event_log_storage
            return {vendor: len(storage.get_concurrency_info(vendor).claimed_slots) for vendor in VENDORS}


def steps_by_worker(log: list[EventLogEntry]) -> list[tuple[str, str]]:
    """(step, worker) of each step execution the workers reported, in order."""
    return [
        (entry.step_key, entry.dagster_event.engine_event_data.metadata["Celery worker"].value)
        for entry in log
        if entry.is_dagster_event
        and entry.dagster_event.is_engine_event
        and "Celery worker" in entry.dagster_event.engine_event_data.metadata
    ]


def submitted_queues(log: list[EventLogEntry]) -> dict[str, str]:
    """step -> the queue the run sent it to."""
    return {
        entry.step_key: entry.user_message.rsplit('to queue "', 1)[1].rstrip('".')
        for entry in log
        if entry.user_message.startswith("Submitting celery task for step")
    }


def _worker_command(node: str, queue_names: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "integration_assets.core.celery_app", "worker",
        "--queues", ",".join(queue_names), "--hostname", node, "--concurrency", "1", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def _delete_queues(app: Celery, queue_names: list[str]) -> None:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        for name in queue_names:
            channel.queue_delete(name)


@contextmanager
def production(sandbox: Sandbox, tmp_path: Path) -> Iterator[Deployment]:
    """Two workers on every queue of a unique prefix, the instance and the warehouse in fresh PostgreSQL
    databases (the project's dagster.yaml, as an operator installs it), the vendors in `sandbox`."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    queue_names = queues(VENDORS, {QUEUE_PREFIX_ENV: prefix})
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    app = Celery(broker=DEFAULT_BROKER_URL, backend=DEFAULT_BACKEND_URL)
    with ExitStack() as stack:
        instance_db = stack.enter_context(fresh_postgres_database()).rsplit("/", 1)[1]
        warehouse_url = stack.enter_context(fresh_postgres_database())
        env = {
            **os.environ,
            **sandbox_env(sandbox, warehouse_url),
            **POSTGRES,
            "DAGSTER_PG_DB": instance_db,
            "DAGSTER_HOME": str(home),
            "INTEGRATION_EXECUTOR": "celery",
            QUEUE_PREFIX_ENV: prefix,
            # the workers import the code of this checkout, and keep it until they stop
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
        }
        stack.callback(_delete_queues, app, queue_names)
        workers = {}
        for name in ("a", "b"):
            node = f"{prefix}{name}@localhost"
            log = tmp_path / f"worker_{name}.log"
            workers[node] = stack.enter_context(process_group(_worker_command(node, queue_names), home, env, log))
        for node in workers:
            log = tmp_path / f"worker_{node[len(prefix)]}.log"
            wait_for(f"worker {node} ready", lambda log=log: "ready." in log.read_text(), 60, log=log)
        yield Deployment(env, home, warehouse_url, workers, app)


def test_integration_sync_on_celery_workers_equals_an_in_process_run(
    shared_sandbox: Sandbox, in_process_tables: dict[str, list[tuple]], tmp_path: Path
) -> None:
    with production(shared_sandbox, tmp_path) as deployment:
        code, log = deployment.run_sync()
        assert code == 0, log[-3000:]
        differences = _difference(in_process_tables, _tables(deployment.warehouse_url))
        assert not differences, "\n".join(f"{table}: {what}" for table, what in differences.items())
        run_log = deployment.run_log()
    sent_to, ran_on = submitted_queues(run_log), steps_by_worker(run_log)

    prefix = deployment.env[QUEUE_PREFIX_ENV]
    assert {step: sent_to[step] for step in VENDOR_OF_STEP} == {
        step: f"{prefix}{vendor}" for step, vendor in VENDOR_OF_STEP.items()
    }, "each vendor's steps go to its queue"
    assert {queue for step, queue in sent_to.items() if step not in VENDOR_OF_STEP} == {f"{prefix}dagster"}
    assert sorted(step for step, _ in ran_on) == sorted(sent_to), "each step runs once, on a worker"
    assert {worker for _, worker in ran_on} == set(deployment.workers), "both workers took steps"


def _zendesk_requests(sandbox: Sandbox) -> int:
    stats = requests.get(f"{sandbox.url('zendesk')}/__sandbox__/stats", timeout=5).json()
    return stats["zendesk"].get("requests", 0)


def _running_support_step(deployment: Deployment) -> tuple[str, str] | None:
    """(worker, step) of a Zendesk step a worker is running now, as the workers themselves answer."""
    active = deployment.app.control.inspect(destination=list(deployment.workers), timeout=1).active() or {}
    for node, tasks in active.items():
        for task in tasks:
            step = next((key for key in VENDOR_OF_STEP if key.startswith("support__") and key in str(task)), None)
            if step is not None:
                return node, step
    return None


def _kill_mid_zendesk_step(deployment: Deployment, sandbox: Sandbox) -> tuple[str, str]:
    """SIGKILLs the session of the worker running a Zendesk step once that step has fetched two more pages and
    still runs (asked again just before the kill); (worker, step)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = _running_support_step(deployment)
        if running is None:
            time.sleep(0.1)
            continue
        served = _zendesk_requests(sandbox)
        wait_for("two more Zendesk pages", lambda served=served: _zendesk_requests(sandbox) >= served + 2, 30)
        if _running_support_step(deployment) == running:
            killed = deployment.workers[running[0]]
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait(timeout=30)
            return running
    raise AssertionError("no Zendesk step ran long enough on a worker to be killed: make Zendesk slower")


def test_a_worker_killed_mid_step_loses_nothing(
    dataset: Path, in_process_tables: dict[str, list[tuple]], tmp_path: Path
) -> None:
    """Zendesk answers slowly; the worker running a Zendesk step is SIGKILLed, with its whole session, once the
    step has fetched some pages: RabbitMQ hands the task to the other worker, which runs the step again from the
    committed cursor, and the run ends as if nothing had happened."""
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox, production(sandbox, tmp_path) as deployment:
        put_faults(sandbox, "seed: 3\nzendesk:\n  latency_ms: [300, 350]\n")
        log = deployment.home / "run.log"
        with process_group(SYNC, deployment.home, deployment.env, log) as run:
            node, step = _kill_mid_zendesk_step(deployment, sandbox)
            code = run.wait(timeout=RUN_SECONDS)
        assert code == 0, log.read_text()[-3000:]
        differences = _difference(in_process_tables, _tables(deployment.warehouse_url))
        assert not differences, "\n".join(f"{table}: {what}" for table, what in differences.items())
        run_log, held = deployment.run_log(), deployment.held_slots()

    assert held == dict.fromkeys(VENDORS, 0), "the run freed every pool slot, the killed step's too"
    ran_on = steps_by_worker(run_log)
    (survivor,) = set(deployment.workers) - {node}
    assert [worker for key, worker in ran_on if key == step] == [node, survivor], "redelivered to the other worker"
    assert sorted({key for key, _ in ran_on}) == sorted(submitted_queues(run_log)), "every step ran"
