"""Policies every slice attaches to the assets it owns: step retries, vendor pools, freshness windows and when
the automation sensors run them (`automation_condition`).

They live below the slices so that a slice attaches them itself instead of importing them from another.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from dagster import AutomationCondition, Backoff, FreshnessPolicy, Jitter, RetryPolicy

from integration_assets.core.monitoring_config import Freshness, load_monitoring

__all__ = [
    "RECONCILIATION_CRON",
    "STEP_RETRY",
    "SYNC_CRON",
    "AutomatedLayer",
    "automation_condition",
    "daily_pass",
    "follows_upstream",
    "freshness_metadata",
    "freshness_policy",
    "freshness_sentence",
    "freshness_windows",
]

# A run-level retry for what the client's own retries could not absorb (a vendor down for minutes).
STEP_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
Layer = Literal["source", "canonical"]
AutomatedLayer = Literal["source", "canonical", "writeback", "reconciliation"]
SYNC_CRON = "0 * * * *"  # the sources sync at the top of every hour (UTC); everything else follows their data
RECONCILIATION_CRON = "30 5 * * *"  # and the cross-system checks judge once a day, whatever changed


def freshness_windows() -> Freshness:
    """The freshness windows of monitoring.yaml."""
    return load_monitoring().freshness


def freshness_policy(layer: Layer) -> FreshnessPolicy:
    """Warn, then fail, when the layer's assets have not materialized within the windows of monitoring.yaml."""
    fail, warn = freshness_windows().windows(layer)
    return FreshnessPolicy.time_window(fail_window=timedelta(minutes=fail), warn_window=timedelta(minutes=warn))


def freshness_metadata(layer: Layer) -> dict[str, int]:
    """The layer's windows in exact minutes, for the asset's definition metadata: the UI rounds a policy's
    windows (90 and 120 minutes both read "2 hours"), so the minutes are stated beside it."""
    fail, warn = freshness_windows().windows(layer)
    return {"freshness_warn_minutes": int(warn), "freshness_fail_minutes": int(fail)}


def freshness_sentence(layer: Layer) -> str:
    """The windows in words, for the asset's description (the UI's rounding again)."""
    minutes = freshness_metadata(layer)
    return (
        f"Freshness: warns when not materialized for {minutes['freshness_warn_minutes']} minutes, fails after "
        f"{minutes['freshness_fail_minutes']} minutes."
    )


def automation_condition(layer: AutomatedLayer) -> AutomationCondition:
    """When the automation sensors run an asset or check of the layer: sources on the clock, the rest on data.

    - `source`: at the top of every hour (`SYNC_CRON`, UTC): the clock that starts the chain.
    - `canonical`, `writeback`: `follows_upstream`, once the data of an input changed and all are usable.
    - `reconciliation` (the cross-system checks): the same, and besides once a day (`RECONCILIATION_CRON`)
      whatever changed: `won_deals_invoiced` judges by the calendar (a deal's invoice grace period ends with
      no record changing), and a quiet day still gets its report.
    """
    if layer == "source":
        return AutomationCondition.on_cron(SYNC_CRON, cron_timezone="UTC")
    if layer == "reconciliation":
        # for a check, "missing" means not yet run against its asset's latest materialization, which a build
        # skipped as unchanged also makes: only a change of data triggers it
        checks = follows_upstream(when_missing=False) | daily_pass(RECONCILIATION_CRON)
        return checks.with_label("follows_upstream_or_daily")
    return follows_upstream()


def follows_upstream(*, when_missing: bool = True) -> AutomationCondition:
    """Dagster's `eager()`, triggered by data rather than by runs, and only on usable inputs.

    Trigger: an input's data version changed (a source's is its raw table's version, a canonical asset's what
    it was built from: a sync that landed nothing, or a build skipped as unchanged, triggers nothing), or the
    input is requested on the same tick (one run: Dagster orders the steps and skips what follows a failed
    step or blocking check), or (`when_missing`) the target went missing. As in `eager()`, an input updated
    by a run that also ran the target does not trigger it again, and nothing runs while an input is missing
    or in progress.

    Usable inputs: none whose latest run failed, none with a blocking check (the canonical `contract`)
    broken or still running against its latest materialization: the trigger waits for them. An input whose
    blocking check failed drops the trigger: the next build of it that passes triggers again. (A build
    skipped as unchanged records no verdict, so Dagster no longer sees that refusal: a change of another
    input would then run the target.)
    """
    not_this_tick = ~AutomationCondition.will_be_requested()
    changed = AutomationCondition.any_deps_match(
        (AutomationCondition.data_version_changed() & ~AutomationCondition.executed_with_root_target()).with_label(
            "data_changed_without_root"
        )
        | AutomationCondition.will_be_requested()
    ).with_label("any_deps_changed")
    refused = AutomationCondition.any_deps_match(
        AutomationCondition.any_checks_match(AutomationCondition.check_failed(), blocking_only=True) & not_this_tick
    ).with_label("any_deps_refused_by_blocking_check")
    unsettled = AutomationCondition.any_deps_match(
        (
            AutomationCondition.execution_failed()
            | AutomationCondition.any_checks_match(
                AutomationCondition.execution_failed() | AutomationCondition.run_in_progress(), blocking_only=True
            )
        )
        & not_this_tick
    ).with_label("any_deps_failed_or_blocking_check_pending")
    handled = (
        AutomationCondition.newly_requested()
        | AutomationCondition.newly_updated()
        | AutomationCondition.initial_evaluation()
    ).with_label("handled")
    trigger = (AutomationCondition.newly_missing() | changed) if when_missing else changed
    return (
        trigger.since(handled | refused)
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & ~unsettled
        & ~refused
    ).with_label("follows_upstream")


def daily_pass(cron: str) -> AutomationCondition:
    """Once after each tick of `cron` (UTC) whatever changed, as soon as no input is missing or in progress."""
    return (
        AutomationCondition.cron_tick_passed(cron, cron_timezone="UTC").since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label(f"daily_pass({cron})")
