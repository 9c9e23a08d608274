"""The one executor of the code location, chosen from `INTEGRATION_EXECUTOR`.

`Definitions.merge` accepts a single executor, so it is chosen here, once, for every job that does not name
its own (a job that calls no vendor may run in process):

- `forkserver` (the default, the embedded profile): Dagster's multiprocess executor, each step forked from a
  server that imported the code location and Dagster's execution machinery once (`integration_assets.forkserver`).
  A step that crashes, even with SIGKILL, takes only itself down, and starts in a fraction of a second.
- `multiprocess`: the same executor, each step a fresh interpreter (slow to start; for debugging a step
  that misbehaves only after a fork).
- `in_process`: every step in the run's own process (no isolation; what `execute_in_process` does).
- `celery` (the production profile): `dagster-celery`'s executor, each step a Celery task on RabbitMQ, run by
  whichever worker listens on its queue, its result in Redis (`core/celery_app.py`: the settings, and the app
  the workers start). It needs a persistent Dagster instance (PostgreSQL: `dagster.yaml`).

The step concurrency of the multiprocess kinds is `DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT` (Dagster's
own setting; the number of CPUs by default); Celery's is the number of workers and their `--concurrency`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

__all__ = ["EXECUTORS", "EXECUTOR_ENV", "PRELOAD_MODULE", "executor_from_env"]

EXECUTOR_ENV = "INTEGRATION_EXECUTOR"
PRELOAD_MODULE = "integration_assets.forkserver"  # imported once by the fork server, before the first step
EXECUTORS = ("forkserver", "multiprocess", "in_process", "celery")


def executor_from_env(environ: Mapping[str, str] = os.environ) -> ExecutorDefinition:
    kind = environ.get(EXECUTOR_ENV, "").strip() or "forkserver"
    if kind == "forkserver":
        return multiprocess_executor.configured(
            {"start_method": {"forkserver": {"preload_modules": [PRELOAD_MODULE]}}}, name="forkserver_executor"
        )
    if kind == "multiprocess":
        return multiprocess_executor
    if kind == "in_process":
        return in_process_executor
    if kind == "celery":
        # imported only here: the embedded profile does not need Celery installed
        from integration_assets.core.celery_app import celery_executor_from_env

        return celery_executor_from_env(environ)
    raise ValueError(f"{EXECUTOR_ENV}={kind!r} is not an executor: choose one of {', '.join(EXECUTORS)}")
