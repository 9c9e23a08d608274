"""The four cross-system checks run in one step, yet each is its own check: shown by name on its asset, with its
own history, executable alone, and automated on its own inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    ResourceDefinition,
    materialize,
)

from integration_assets.definitions import defs
from integration_assets.reconciliation.common import CROSS_SYSTEM_STEP, CrossSystemCheck, cross_system_step
from integration_assets.reconciliation.definitions import cross_system_checks

DECLARED = {  # name → (shown on, also reads): as before the step was merged
    "won_deals_invoiced": ("canonical/deals", {"canonical/invoices"}),
    "invoices_paid_by_payments": ("canonical/payments", {"canonical/invoices"}),
    "customer_master_agrees": ("canonical/customers", set()),
    "tickets_known_people": ("canonical/tickets", {"canonical/customers"}),
}


def test_one_step_declares_each_check_by_name_on_its_asset_executable_alone() -> None:
    (step,) = cross_system_checks
    assert step.node_def.name == CROSS_SYSTEM_STEP
    assert step.can_subset
    specs = {spec.name: spec for spec in step.check_specs}
    assert set(specs) == set(DECLARED)
    for name, (asset, reads) in DECLARED.items():
        spec = specs[name]
        assert spec.asset_key.to_user_string() == asset
        assert {dep.asset_key.to_user_string() for dep in spec.additional_deps} == reads
        assert not spec.blocking and spec.description
        assert spec.automation_condition is not None
        assert spec.automation_condition.get_label() == "follows_upstream_or_daily"
    graph = defs.get_repository_def().asset_graph
    for name, (asset, _) in DECLARED.items():
        assert AssetCheckKey(AssetKey.from_user_string(asset), name) in graph.asset_check_keys
    job = defs.resolve_job_def("reconciliation")
    assert job.executor_def.name == "in_process"  # reads the warehouse only: nothing to isolate
    assert [node.name for node in job.nodes_in_topological_order] == [CROSS_SYSTEM_STEP]


def _fake(name: str, asset: str, outcome: bool | Exception, calls: list[str]) -> CrossSystemCheck:
    def evaluate(warehouse: object) -> AssetCheckResult:
        assert warehouse == "the warehouse"
        calls.append(name)
        if isinstance(outcome, Exception):
            raise outcome
        return AssetCheckResult(passed=outcome, metadata={"summary": f"{name} judged"})

    return CrossSystemCheck(name=name, asset=AssetKey(["canonical", asset]), description=name, evaluate=evaluate)


class _Warehouse(str):
    """Stands for the warehouse: the step holds one connection of it open and hands it to each check."""

    @contextmanager
    def held(self) -> Iterator[None]:
        yield


WAREHOUSE = {
    "warehouse": ResourceDefinition.hardcoded_resource(SimpleNamespace(open=lambda: _Warehouse("the warehouse")))
}


def test_a_check_executed_alone_is_the_only_one_evaluated() -> None:
    calls: list[str] = []
    step = cross_system_step([_fake("first", "deals", True, calls), _fake("second", "payments", False, calls)])
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [step],
            selection=AssetSelection.checks(AssetCheckKey(AssetKey(["canonical", "payments"]), "second")),
            resources=WAREHOUSE,
            instance=instance,
        )
    assert result.success
    assert calls == ["second"]
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.check_name, evaluation.passed) == (
        AssetKey(["canonical", "payments"]),
        "second",
        False,
    )
    assert evaluation.metadata["summary"].value == "second judged"


def test_a_check_that_raises_hides_none_of_the_others_and_fails_the_step() -> None:
    calls: list[str] = []
    step = cross_system_step(
        [
            _fake("first", "deals", True, calls),
            _fake("broken", "customers", RuntimeError("the table is gone"), calls),
            _fake("third", "tickets", False, calls),
        ]
    )
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [step], selection=AssetSelection.checks(step), resources=WAREHOUSE, instance=instance, raise_on_error=False
        )
    assert not result.success
    assert calls == ["first", "broken", "third"]
    assert {(e.check_name, e.passed) for e in result.get_asset_check_evaluations()} == {
        ("first", True),
        ("third", False),
    }
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert (
        "cross-system check broken failed to evaluate: the table is gone" in failure.step_failure_data.error.to_string()
    )


def test_two_checks_of_one_name_on_one_asset_are_refused() -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match="share a name"):
        cross_system_step([_fake("same", "deals", True, calls), _fake("same", "deals", True, calls)])
