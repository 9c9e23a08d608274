"""Checks run where their data is: each in the step that materializes its asset, costing what landed, and each
still executable alone, as the UI offers it.

Driven as users do: the code location's own assets over a sandbox on HTTP and a real warehouse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.executor import EXECUTOR_ENV, executor_from_env
from integration_assets.definitions import defs
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sandbox import sandbox_records
from integration_assets_tests.testing.sync import checked_sources, materialized, resources
from integration_sandbox.clients import session
from integration_sandbox.server import Sandbox

STREAM_CHECKS = {"contract", "drift", "volume", "complete_against_vendor"}
CANONICAL_CHECKS = {"contract", "accounting_balances"}
EVERYTHING = [*checked_sources(), *canonical_assets]
CONTACTS = AssetKey(["crm", "contacts"])


def _served(sandbox: Sandbox, vendor: str) -> int:
    return requests.get(f"{sandbox.url(vendor)}/__sandbox__/stats", timeout=5).json()[vendor].get("requests", 0)


def _reset_stats(sandbox: Sandbox) -> None:
    for vendor in ("hubspot", "stripe", "zendesk"):
        requests.delete(f"{sandbox.url(vendor)}/__sandbox__/stats", timeout=5)


def test_sync_job_has_one_step_per_asset_with_its_checks_inside() -> None:
    job = defs.resolve_job_def("integration_sync")
    steps = {node.name for node in job.graph.node_defs}
    assets = {key for key in job.asset_layer.asset_graph.executable_asset_keys}
    assert len(steps) == len(assets) == len(CATALOG.streams) + len(canonical_assets)
    for stream in CATALOG.streams:
        definition = defs.resolve_assets_def(stream.asset_key)
        assert {key.name for key in definition.check_keys} == STREAM_CHECKS, stream.key
        assert definition.can_subset, "a check must be executable without re-syncing its stream"
    for asset in canonical_assets[:5]:
        assert {key.name for key in asset.check_keys} == CANONICAL_CHECKS
    assert job.executor_def.name == "forkserver_executor"


def test_executor_is_chosen_in_one_place_from_the_environment() -> None:
    assert executor_from_env({}).name == "forkserver_executor"
    assert executor_from_env({EXECUTOR_ENV: "in_process"}).name == "in_process"
    assert executor_from_env({EXECUTOR_ENV: "multiprocess"}).name == "multiprocess"
    with pytest.raises(ValueError, match=r"INTEGRATION_EXECUTOR='threads' is not an executor: choose one of"):
        executor_from_env({EXECUTOR_ENV: "threads"})


def test_each_check_executes_alone_without_syncing(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        assert materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance).success
        for key, vendor_calls in (
            (AssetCheckKey(CONTACTS, "contract"), False),
            (AssetCheckKey(CONTACTS, "volume"), False),
            (AssetCheckKey(CONTACTS, "complete_against_vendor"), True),
            (AssetCheckKey(AssetKey(["canonical", "deals"]), "accounting_balances"), False),
        ):
            _reset_stats(sandbox)
            alone = materialize(
                EVERYTHING, selection=AssetSelection.checks(key), resources=resources(sandbox, url), instance=instance
            )
            assert alone.success
            assert not alone.get_asset_materialization_events(), key
            evaluations = alone.get_asset_check_evaluations()
            assert [(e.asset_key, e.check_name) for e in evaluations] == [(key.asset_key, key.name)]
            assert evaluations[0].passed, evaluations[0].metadata
            assert (_served(sandbox, "hubspot") > 0) == vendor_calls, key
        # the check's history holds both evaluations: the one of the sync and the one run alone
        records = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(CONTACTS, "contract"), limit=10
        )
        assert len(records) == 2


def test_contract_judges_what_landed_and_remembers_what_still_breaks_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """A broken record keeps the check failing on runs that do not land it again, until it is fixed."""
    url = str(tmp_path / "warehouse.duckdb")
    contacts = [a for a in checked_sources("contract") if a.key == CONTACTS]
    record = next(r for r in sandbox_records(sandbox, "hubspot", "contacts") if r["properties"].get("email"))
    record["properties"]["email"] = [record["properties"]["email"]]  # a list where a string is promised
    answer = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/records/contacts", json=record, timeout=10)
    assert answer.status_code < 300, answer.text

    def contract() -> tuple[dict, dict]:
        result = materialize(contacts, resources=resources(sandbox, url), instance=instance)
        assert result.success
        (evaluation,) = result.get_asset_check_evaluations()
        return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()} | {
            "passed": evaluation.passed
        }, materialized(result)["crm/contacts"]

    with DagsterInstance.ephemeral() as instance:
        first, landed = contract()
        assert not first["passed"] and first["sample_ids"] == str(record["id"])
        assert first["records_checked"] == landed["live_rows"].value  # the first sync lands every record

        other = next(r for r in sandbox_records(sandbox, "hubspot", "contacts") if r["id"] != record["id"])
        edited = session("hubspot").patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/contacts/{other['id']}",
            json={"properties": {"firstname": "Edited"}},
            timeout=5,
        )
        assert edited.status_code == 200, edited.text
        contract()  # lands the edit; the cursor moves past the broken record
        again, landed = contract()  # lands at most the overlap of the cursor: not the broken record
        assert again["records_checked"] <= landed["fetched"].value < first["records_checked"]  # live ones only
        assert not again["passed"] and again["failed_earlier_still_live"] == 1 and again["failed_records"] == 1
        assert again["earlier_failing_ids"] == str(record["id"])

        fixed = session("hubspot").patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/contacts/{record['id']}",
            json={"properties": {"email": "fixed@drill.example"}},
            timeout=5,
        )
        assert fixed.status_code == 200, fixed.text
        healed, landed = contract()
        assert 1 <= healed["records_checked"] <= landed["fetched"].value
        assert healed["passed"] and healed["failed_records"] == 0


def test_an_unchanged_input_is_not_rebuilt_and_costs_about_one_request_per_stream(
    sandbox: Sandbox, tmp_path: Path, config_dir: Path
) -> None:
    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        full = materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance)
        assert full.success
        assert all(m["rebuilt"].value for k, m in materialized(full).items() if "rebuilt" in m)
        assert materialized(full)["canonical/deals"]["rebuilt_because"].value == "first build"
        _reset_stats(sandbox)
        noop = materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance)
        assert noop.success
        metadata = materialized(noop)
        for stream in CATALOG.streams:
            assert metadata[stream.key]["inserted"].value == metadata[stream.key]["updated"].value == 0
            assert metadata[stream.key]["api_calls"].value <= 2, stream.key
        rebuilt = {key: m["rebuilt"].value for key, m in metadata.items() if "rebuilt" in m}
        assert set(rebuilt) == {f"canonical/{e}" for e in ("customers", "deals", "invoices", "payments", "tickets")}
        assert not any(rebuilt.values()), rebuilt
        versioned = [*(s.key for s in CATALOG.streams), *rebuilt]
        assert _data_versions(full, versioned) == _data_versions(noop, versioned)
        # the checks still judge every newest materialization, rebuilt or not
        assert {e.check_name for e in noop.get_asset_check_evaluations()} == STREAM_CHECKS | CANONICAL_CHECKS

        changed = session("hubspot").patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/deals/{sandbox_records(sandbox, 'hubspot', 'deals')[0]['id']}",
            json={"properties": {"dealname": "Renamed in the drill"}},
            timeout=5,
        )
        assert changed.status_code == 200, changed.text
        after = materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance)
        built = materialized(after)
        rebuilt = {key: m["rebuilt"].value for key, m in built.items() if "rebuilt" in m}
        assert rebuilt["canonical/deals"] and not rebuilt["canonical/tickets"], rebuilt
        # said plainly: the one input that changed (the deals' raw table), not a bare "rebuilt"
        assert built["canonical/deals"]["rebuilt_because"].value == "changed since the last build: raw.crm_deals"
        assert "rebuilt_because" not in built["canonical/tickets"]
        # a person's decisions touch every entity: each is rebuilt, saying so
        (config_dir / "review_decisions.yaml").write_text("# answered in the drill\ndecisions: []\n")
        decided = materialized(materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance))
        because = {key: m["rebuilt_because"].value for key, m in decided.items() if "rebuilt_because" in m}
        assert set(because) == set(rebuilt)
        assert all(text == "changed since the last build: review_decisions.yaml" for text in because.values()), because


def _data_versions(result, keys: list[str]) -> dict[str, str]:
    """Asset key → the data version its materialization reported (sources and canonical entities set theirs)."""
    found = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.tags["dagster/data_version"]
        for e in result.get_asset_materialization_events()
    }
    return {key: found[key] for key in keys}
