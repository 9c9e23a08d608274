"""The Celery queue of each step (production profile): one per vendor, so a deployment sizes workers per vendor.

A step that calls a vendor carries the op tag `dagster-celery/queue` = the vendor's name (the same name as its
concurrency pool); any other step goes to the default queue. `INTEGRATION_CELERY_QUEUE_PREFIX` (empty by
default) prefixes every name, so two deployments, or two test runs, can share one broker without taking each
other's tasks. The tag is read when the code location loads: the run and its workers must agree on the prefix.
Kept apart from `celery_app.py` so the assets carry their queue without importing Celery.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_QUEUE", "QUEUE_PREFIX_ENV", "QUEUE_TAG", "default_queue", "queue_tags", "queues", "vendor_queue"]

QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
QUEUE_PREFIX_ENV = "INTEGRATION_CELERY_QUEUE_PREFIX"
DEFAULT_QUEUE = "dagster"  # dagster-celery's own default queue: steps that call no vendor


def _prefix(environ: Mapping[str, str]) -> str:
    return environ.get(QUEUE_PREFIX_ENV, "").strip()


def vendor_queue(vendor: str, environ: Mapping[str, str] = os.environ) -> str:
    return f"{_prefix(environ)}{vendor}"


def default_queue(environ: Mapping[str, str] = os.environ) -> str:
    return f"{_prefix(environ)}{DEFAULT_QUEUE}"


def queues(vendors: Iterable[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every queue of a deployment: one per vendor, then the default one (what a worker for all of them reads)."""
    return [*(vendor_queue(vendor, environ) for vendor in vendors), default_queue(environ)]


def queue_tags(vendor: str) -> dict[str, str]:
    """The op tags of a step that calls `vendor`."""
    return {QUEUE_TAG: vendor_queue(vendor)}
