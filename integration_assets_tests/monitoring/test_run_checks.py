"""A run whose checks failed says so in the runs list: `run_check_tags` tags it once it ended.

Driven as the daemon drives it: a real run (a job of an asset with four checks, three failing, as a
reconciliation run with planted defects), then a tick of the sensor on the same instance, SQLite and
PostgreSQL; the tags are read back from the stored run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    build_sensor_context,
    define_asset_job,
    instance_for_test,
)

from integration_assets.monitoring.run_checks import CHECKS_TAG, FAILED_CHECKS_TAG, run_check_tags


@asset(key=["billing", "ledger_probe"])
def ledger_probe() -> int:
    return 1


def _check(name: str, passed: bool):
    @asset_check(asset=ledger_probe, name=name)
    def _evaluate() -> AssetCheckResult:
        return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.ERROR)

    return _evaluate


@asset(key=["billing", "quiet_probe"])
def quiet_probe() -> int:
    return 1


AGREE = _check("customers_agree", True)
CHECKS = [_check("won_deals_invoiced", False), _check("invoices_paid", False), _check("balances", False), AGREE]
DEFS = Definitions(
    assets=[ledger_probe, quiet_probe],
    asset_checks=CHECKS,
    jobs=[define_asset_job("reconcile_probe", [ledger_probe]), define_asset_job("quiet", [quiet_probe])],
)


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterInstance]:
    if request.param == "sqlite":
        with instance_for_test(temp_dir=str(tmp_path)) as found:
            yield found
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg2://", 1)
        with instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as found:
            yield found


def _tick(instance: DagsterInstance, cursor: str | None):
    return run_check_tags.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))


def test_a_run_with_failed_checks_is_tagged_with_their_count(instance: DagsterInstance) -> None:
    first = _tick(instance, None)
    assert "no run with checks ended" in (first.skip_message or "")

    job = DEFS.resolve_job_def("reconcile_probe")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success  # the steps succeeded: Dagster lists the run as "Success"
    assert len(result.get_asset_check_evaluations()) == 4
    quiet = DEFS.resolve_job_def("quiet").execute_in_process(instance=instance)

    tick = _tick(instance, first.cursor)
    assert "tagged 1 ended run(s)" in (tick.skip_message or "") and "1 with failed checks" in tick.skip_message
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags[FAILED_CHECKS_TAG] == "3" and tags[CHECKS_TAG] == "3 of 4 failed"
    assert FAILED_CHECKS_TAG not in instance.get_run_by_id(quiet.run_id).tags  # no check: no tag

    # the next tick reads nothing new; a clean run later gets "0"
    assert "no run with checks ended" in (_tick(instance, tick.cursor).skip_message or "")
    clean = Definitions(assets=[ledger_probe], asset_checks=[AGREE], jobs=[define_asset_job("clean", [ledger_probe])])
    run = clean.resolve_job_def("clean").execute_in_process(instance=instance)
    _tick(instance, tick.cursor)
    assert instance.get_run_by_id(run.run_id).tags[CHECKS_TAG] == "0 of 1 failed"
