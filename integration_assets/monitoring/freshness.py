"""Freshness windows from config as Dagster's own FreshnessPolicy, so the UI shows each asset's freshness state."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from dagster import FreshnessPolicy

from integration_assets.monitoring.config import load_monitoring

__all__ = ["freshness_policy"]


def freshness_policy(layer: Literal["source", "canonical"]) -> FreshnessPolicy:
    """Warn, then fail, when the layer's assets have not materialized within the windows of monitoring.yaml."""
    windows = load_monitoring().freshness
    fail, warn = (
        (windows.source_fail_minutes, windows.source_warn_minutes)
        if layer == "source"
        else (windows.canonical_fail_minutes, windows.canonical_warn_minutes)
    )
    return FreshnessPolicy.time_window(fail_window=timedelta(minutes=fail), warn_window=timedelta(minutes=warn))
