"""Jobs and schedules as the code location defines them, and the instance settings that pace vendor calls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, Backoff, DagsterInstance, Jitter, RunRequest, build_schedule_context

from integration_assets.canonical.assets import asset_checks as canonical_checks
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.definitions import defs
from integration_assets.monitoring import health
from integration_assets.quickstart import SQLITE_INSTANCE
from integration_assets.reconciliation.completeness import completeness_checks
from integration_assets.reconciliation.definitions import cross_system_checks
from integration_assets.systems import CATALOG
from integration_assets.systems.definitions import source_assets
from integration_assets_tests.testing import POSTGRES, PROJECT

VENDOR_RESOURCES = {"hubspot", "stripe", "zendesk"}
SYSTEMS = CATALOG.roles
SOURCES = source_assets()
schedules = list(defs.schedules or [])
EXPECTED = {  # job → (cron, hours of a day it runs at)
    "integration_sync": ("0 * * * *", 24),
    "reconciliation": (None, 1),
    "health": ("*/15 * * * *", 24),
    "write_back": ("20 * * * *", 24),  # after the hourly sync has rebuilt the canonical model
}


def check_keys(assets_defs) -> set:
    return {key for definition in assets_defs for key in definition.check_keys}


def test_each_schedule_targets_its_job_at_its_rhythm() -> None:
    by_job = {schedule.job_name: schedule for schedule in schedules}
    assert set(by_job) == set(EXPECTED)
    for job_name, (cron, _) in EXPECTED.items():
        schedule = by_job[job_name]
        if cron:
            assert schedule.cron_schedule == cron
        assert defs.get_schedule_def(schedule.name) is not None
    minute, hour, *rest = by_job["reconciliation"].cron_schedule.split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]  # once a day


@pytest.mark.parametrize("job_name", list(EXPECTED))
def test_a_tick_requests_a_run_of_its_job_tagged_with_its_systems(job_name: str) -> None:
    schedule = next(s for s in schedules if s.job_name == job_name)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 1, 5, 6, tzinfo=UTC)
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1 and isinstance(requests[0], RunRequest)
    request = requests[0]
    assert request.job_name in (None, job_name)  # None: the schedule's own job
    for system in SYSTEMS:
        assert request.tags[f"system/{system}"] == "true"
    job = defs.resolve_job_def(job_name)
    assert {k: v for k, v in job.tags.items() if k.startswith("system/")} == {f"system/{s}": "true" for s in SYSTEMS}


def test_sync_job_runs_sources_canonical_their_checks_and_completeness_but_not_cross_system_checks() -> None:
    job = defs.resolve_job_def("integration_sync")
    selected = job.asset_layer.asset_graph
    assert {key for a in (*SOURCES, *canonical_assets) for key in a.keys} <= set(selected.executable_asset_keys)
    checks = set(selected.asset_check_keys)
    assert check_keys(canonical_checks) <= checks
    assert check_keys(completeness_checks(CATALOG)) <= checks  # counted right after each stream lands
    assert not check_keys(cross_system_checks) & checks


def test_reconciliation_and_health_jobs_resolve() -> None:
    reconciliation = defs.resolve_job_def("reconciliation")
    assert set(reconciliation.asset_layer.asset_graph.asset_check_keys) == check_keys(cross_system_checks)
    assert reconciliation.nodes_in_topological_order  # never an empty run

    job = defs.resolve_job_def("health")
    assert set(job.asset_layer.asset_graph.executable_asset_keys) == {AssetKey(["ops", "integration_health"])}
    names = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert names == {
        *(f"{kind}_{system}" for kind in ("connector_health", "downtime", "traffic") for system in SYSTEMS),
        *(f"credential_expiry_{system}" for system in SYSTEMS),
    }


def _vendor_steps():
    """Every asset and check of the code location whose step calls a vendor (needs a vendor resource)."""
    graph = defs.resolve_asset_graph()
    for definition in graph.assets_defs:
        vendors = definition.required_resource_keys & VENDOR_RESOURCES
        if vendors:
            yield definition, vendors


def test_steps_that_call_vendors_retry_with_backoff_and_jitter_in_their_vendor_pool() -> None:
    steps = list(_vendor_steps())
    assert {key for definition, _ in steps for key in definition.keys} >= {key for a in SOURCES for key in a.keys}
    for definition, vendors in steps:
        node = definition.node_def
        name = node.name
        assert len(vendors) == 1, name
        assert node.pool == next(iter(vendors)), name
        policy = definition.op.retry_policy
        assert policy is not None and policy.backoff == Backoff.EXPONENTIAL and policy.jitter == Jitter.PLUS_MINUS, name
    # The health steps read the warehouse only: nothing to pace or retry against a vendor.
    for definition in [health.build_health_asset(CATALOG), *health.build_health_checks(CATALOG)]:
        assert not definition.required_resource_keys & VENDOR_RESOURCES


@pytest.mark.parametrize("instance_kind", ["sqlite", "postgres"])
def test_each_vendor_pool_has_one_slot_on_both_instances(
    instance_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if instance_kind == "sqlite":
        config = SQLITE_INSTANCE
    else:
        config = (PROJECT / "dagster.yaml").read_text()
        fresh_database = request.getfixturevalue("postgres_url").rsplit("/", 1)[1]
        for name, value in {**POSTGRES, "DAGSTER_PG_DB": fresh_database}.items():
            monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text(config)
    assert yaml.safe_load(config)["concurrency"]["pools"]["default_limit"] == 1
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        pools = {source.node_def.pool for source in SOURCES}
        assert pools == VENDOR_RESOURCES
        for pool in sorted(pools):
            storage.initialize_concurrency_limit_to_default(pool)
            assert storage.get_concurrency_info(pool).slot_count == 1, pool
