"""Policies every slice attaches to the assets it owns: step retries, vendor pools and freshness windows.

They live below the slices so that a slice attaches them itself instead of importing them from another.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from dagster import Backoff, FreshnessPolicy, Jitter, RetryPolicy

from integration_assets.core.monitoring_config import Freshness, load_monitoring

__all__ = ["FRESHNESS_CHECK_NAME", "STEP_RETRY", "freshness_policy", "freshness_windows"]

# A run-level retry for what the client's own retries could not absorb (a vendor down for minutes).
STEP_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
FRESHNESS_CHECK_NAME = "freshness_check"  # the name Dagster gives every last-update freshness check
Layer = Literal["source", "canonical"]


def freshness_windows() -> Freshness:
    """The freshness windows of monitoring.yaml."""
    return load_monitoring().freshness


def freshness_policy(layer: Layer) -> FreshnessPolicy:
    """Warn, then fail, when the layer's assets have not materialized within the windows of monitoring.yaml."""
    fail, warn = freshness_windows().windows(layer)
    return FreshnessPolicy.time_window(fail_window=timedelta(minutes=fail), warn_window=timedelta(minutes=warn))
