"""The production profile's Celery settings: the executor a run submits its steps with, and the app workers run.

Both are built from the same environment, so a run and its workers agree on the broker, the result backend
and the delivery rules:

- `INTEGRATION_CELERY_BROKER_URL`: RabbitMQ (`amqp://guest:guest@127.0.0.1:5672//` by default);
- `INTEGRATION_CELERY_BACKEND_URL`: Redis for the steps' results (`redis://127.0.0.1:6379/0` by default);
- `INTEGRATION_CELERY_QUEUE_PREFIX`: prefixes every queue name (`core/queues.py`).

A task is acknowledged when its step ends, not when a worker takes it (`task_acks_late`), and a worker whose
process dies mid-step hands the task back (`task_reject_on_worker_lost`): RabbitMQ then delivers it to another
worker, which runs the step again from the cursor the first one committed with its rows. Dagster's own step
retry never sees a killed worker: the run only waits for the task's result. Each worker takes one task at a
time (prefetch 1), so a long step holds no other task hostage. RabbitMQ closes the channel of a consumer that
holds a task unacknowledged longer than its `consumer_timeout` (30 min by default) and redelivers the task:
raise it on the broker above the longest step (README, "Production profile").

Workers keep the code they were started with: restart them after a deploy, like the code server.

Start a worker: `celery -A integration_assets.core.celery_app worker -Q hubspot,dagster --concurrency 1`
(or `dagster-celery worker start -A integration_assets.core.celery_app -q hubspot -q dagster`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from dagster import ExecutorDefinition
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from integration_assets.core.queues import default_queue

__all__ = [
    "BACKEND_ENV",
    "BROKER_ENV",
    "DEFAULT_BACKEND_URL",
    "DEFAULT_BROKER_URL",
    "app",
    "celery_executor_from_env",
    "celery_settings",
]

CODE_LOCATION = "integration_assets.definitions"  # the module workspace.yaml loads
BROKER_ENV = "INTEGRATION_CELERY_BROKER_URL"
BACKEND_ENV = "INTEGRATION_CELERY_BACKEND_URL"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND_URL = "redis://127.0.0.1:6379/0"
BROKER_SCHEMES = ("amqp", "amqps", "pyamqp")  # RabbitMQ: redelivery of unacknowledged tasks is what it promises
BACKEND_SCHEMES = ("redis", "rediss")


def _url(environ: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...], what: str) -> str:
    url = environ.get(name, "").strip() or default
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ValueError(
            f"{name}={scheme + '://…' if scheme else repr(url)} is no {what} URL: "
            f"the production profile expects {' or '.join(s + '://' for s in schemes)}"
        )
    return url


def broker_url(environ: Mapping[str, str] = os.environ) -> str:
    return _url(environ, BROKER_ENV, DEFAULT_BROKER_URL, BROKER_SCHEMES, "RabbitMQ")


def backend_url(environ: Mapping[str, str] = os.environ) -> str:
    return _url(environ, BACKEND_ENV, DEFAULT_BACKEND_URL, BACKEND_SCHEMES, "Redis")


def celery_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Celery's settings (its lowercase names), for the run that sends tasks and the workers that run them."""
    return {
        "task_acks_late": True,  # acknowledged when the step ends: a lost worker's task goes back to the queue
        "task_reject_on_worker_lost": True,  # ... also when only the worker's child process died
        "worker_prefetch_multiplier": 1,  # a worker holds no task beyond the ones it runs
        # a worker cut off from RabbitMQ stops its steps: their tasks are redelivered elsewhere, not run twice at once
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": default_queue(environ),
    }


def celery_executor_from_env(environ: Mapping[str, str] = os.environ) -> ExecutorDefinition:
    return celery_executor.configured(
        {
            "broker": broker_url(environ),
            "backend": backend_url(environ),
            "config_source": celery_settings(environ),
        },
        name="celery_executor",
    )


def _worker_app():
    executor = CeleryExecutor.for_cli(
        broker=broker_url(), backend=backend_url(), config_source=celery_settings()
    )  # the same arguments the executor's run builds its app from
    worker_app = make_app(executor.app_args())
    # the worker imports the code location once, before it forks the processes that run steps: otherwise each
    # child imports it at its first step, and a run's first steps wait for it (three workers starting at once
    # on two cores left 4.5 s of HubSpot's budget unspent in `benchmarks/rate_limit_shared.py`)
    worker_app.conf.include = [CODE_LOCATION]
    create_task(worker_app)  # dagster-celery's `execute_plan`: one step of a run
    return worker_app


app = _worker_app()  # `celery -A integration_assets.core.celery_app worker …`
