"""Jobs and schedules as the code location defines them, and the instance settings that pace vendor calls.

Runs follow the data: sources, canonical assets, write-back flows and cross-system checks are run by the
automation sensors (`test_automation.py`). A schedule remains only where the clock, not the data, decides, and
says why in its description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from dagster import AssetCheckKey, AssetKey, Backoff, DagsterInstance, Jitter, RunRequest, build_schedule_context

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.automation import SCHEDULE_REASON
from integration_assets.definitions import defs
from integration_assets.monitoring import health
from integration_assets.quickstart import SQLITE_INSTANCE
from integration_assets.reconciliation.definitions import cross_system_checks
from integration_assets.systems import CATALOG
from integration_assets.systems.definitions import source_assets
from integration_assets_tests.testing import POSTGRES, PROJECT

VENDOR_RESOURCES = {"hubspot", "stripe", "zendesk"}
SYSTEMS = CATALOG.roles
SOURCES = source_assets()
schedules = list(defs.schedules or [])
JOBS = ("integration_sync", "reconciliation", "health", "write_back")
SCHEDULED = {"health": "*/15 * * * *"}  # job → cron: health measures time passing, which no data change announces


def check_keys(assets_defs) -> set:
    return {key for definition in assets_defs for key in definition.check_keys}


def test_only_what_the_clock_decides_is_scheduled_and_each_schedule_says_why() -> None:
    by_job = {schedule.job_name: schedule for schedule in schedules}
    assert {job: schedule.cron_schedule for job, schedule in by_job.items()} == SCHEDULED
    for schedule in schedules:
        assert defs.get_schedule_def(schedule.name) is not None
        assert SCHEDULE_REASON in (schedule.description or ""), schedule.name


def test_no_schedule_runs_what_an_automation_sensor_runs() -> None:
    graph = defs.get_repository_def().asset_graph
    for schedule in schedules:
        job = defs.resolve_job_def(schedule.job_name)
        layer = job.asset_layer.asset_graph
        entities = [*layer.executable_asset_keys, *layer.asset_check_keys]
        automated = sorted(key.to_user_string() for key in entities if graph.get(key).automation_condition is not None)
        assert automated == [], f"{schedule.name} runs what automation already runs: {automated}"


@pytest.mark.parametrize("job_name", list(SCHEDULED))
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


@pytest.mark.parametrize("job_name", JOBS)
def test_every_job_tags_its_runs_with_its_flow_and_systems(job_name: str) -> None:
    job = defs.resolve_job_def(job_name)
    assert job.tags["integration/flow"]
    assert {k: v for k, v in job.tags.items() if k.startswith("system/")} == {f"system/{s}": "true" for s in SYSTEMS}


def test_sync_job_runs_sources_canonical_their_checks_and_completeness_but_not_cross_system_checks() -> None:
    job = defs.resolve_job_def("integration_sync")
    selected = job.asset_layer.asset_graph
    assert {key for a in (*SOURCES, *canonical_assets) for key in a.keys} <= set(selected.executable_asset_keys)
    checks = set(selected.asset_check_keys)
    assert check_keys(canonical_assets) <= checks
    assert {AssetCheckKey(s.asset_key, "complete_against_vendor") for s in CATALOG.streams} <= checks  # after landing
    assert not check_keys(cross_system_checks) & checks


def test_reconciliation_and_health_jobs_resolve() -> None:
    reconciliation = defs.resolve_job_def("reconciliation")
    assert set(reconciliation.asset_layer.asset_graph.asset_check_keys) == check_keys(cross_system_checks)
    assert [node.name for node in reconciliation.nodes_in_topological_order] == ["cross_system_checks"]  # one step
    assert reconciliation.executor_def.name == "in_process"  # it reads the warehouse only: nothing to isolate

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
