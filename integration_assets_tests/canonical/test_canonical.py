"""The canonical layer end to end: a generated business served over HTTP, synced into a real warehouse, then
canonical assets, review queue and accounting checks, judged against the generator's manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from dagster import DagsterInstance, materialize

from integration_assets.canonical.assets import assets
from integration_assets.canonical.raw_contracts import check_stream
from integration_assets.canonical.review import TABLE
from integration_assets.core.warehouse import Warehouse
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults, sandbox_records
from integration_assets_tests.testing.sync import SOURCES, materialized, resources
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

CANONICAL = assets  # each with its own checks


def run_all(sandbox: Sandbox, warehouse_url: str, instance: DagsterInstance):
    result = materialize([*SOURCES, *CANONICAL], resources=resources(sandbox, warehouse_url), instance=instance)
    assert result.success
    return result


def queue(warehouse_url: str, status: str | None = None) -> list[dict]:
    frame = Warehouse.from_url(warehouse_url).frame(f"SELECT * FROM {TABLE}")
    rows = frame.to_dict("records")
    return [r for r in rows if status is None or r["status"] == status]


def judge(manifest: dict, items: list[dict]) -> tuple[set, set]:
    expected = {
        (d["system"], d["object_type"], str(d["id"]), d["kind"])
        for d in manifest["defects"]
        if d["expected"] == "review"
    }
    planted = {(d["system"], d["object_type"], str(d["id"])) for d in manifest["defects"] if d["expected"] == "review"}
    found = {(i["system"], i["object_type"], i["record_id"], i["reason_code"]) for i in items}
    missing = expected - found
    false_positives = {f for f in found if f[:3] not in planted}
    return missing, false_positives


def checks_of(result, name: str = "accounting_balances") -> dict[str, object]:
    return {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations() if c.check_name == name}


@pytest.mark.parametrize(("seed", "scale", "rate"), [(7, 60, 0.3), (11, 150, 0.1), (3, 40, 1.0)])
def test_manifest_recall_and_no_false_positives(tmp_path: Path, seed: int, scale: int, rate: float) -> None:
    data = tmp_path / "data"
    manifest = generate(data, seed=seed, scale=scale, defect_rate=rate)
    url = str(tmp_path / "wh.duckdb")
    with Sandbox(data, ports=FREE_PORTS) as sandbox, DagsterInstance.ephemeral() as instance:
        result = run_all(sandbox, url, instance)
    items = queue(url, "open")
    missing, false_positives = judge(manifest, items)
    print(f"seed={seed} scale={scale} rate={rate}: {len(items)} open items, missing={missing}, fp={false_positives}")
    assert missing == set()
    assert false_positives == set()
    checks = checks_of(result)
    assert set(checks) == {f"canonical/{e}" for e in ("customers", "deals", "invoices", "payments", "tickets")}
    for key, check in checks.items():
        assert check.passed, (key, check.metadata)
    deals = checks["canonical/deals"].metadata
    counts = manifest["counts"]
    assert deals["crm_deals_records_in"].value == counts["hubspot/deals"]
    assert deals["crm_deals_accepted"].value + deals["crm_deals_in_review"].value == counts["hubspot/deals"]
    warehouse = Warehouse.from_url(url)
    n360 = warehouse.query("SELECT count(*), count(DISTINCT customer_id) FROM canonical.customer_360")[0]
    assert n360[0] == n360[1] == warehouse.count("canonical.customers")


def test_items_resolve_when_fixed_and_decisions_apply(sandbox: Sandbox, warehouse_url: str, config_dir: Path) -> None:
    decisions = config_dir / "review_decisions.yaml"  # the operator's copy, which wins over the packaged file
    decisions.write_text("decisions: []\n")
    with DagsterInstance.ephemeral() as instance:
        run_all(sandbox, warehouse_url, instance)
        first = {(i["system"], i["object_type"], i["record_id"], i["reason_code"]): i for i in queue(warehouse_url)}
        bad_email = next(k for k in first if k[3] == "invalid_email")
        ambiguous = next(k for k in first if k[3] == "ambiguous_owner")
        # a person fixes the contact in HubSpot
        contact = next(r for r in sandbox_records(sandbox, "hubspot", "contacts") if r["id"] == bad_email[2])
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        contact["properties"]["email"] = "fixed.person@fixed-example.example"
        contact["properties"]["lastmodifieddate"] = now
        contact["updatedAt"] = now
        stored = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/records/contacts", json=contact, timeout=5)
        assert stored.status_code == 200, stored.text
        # and another answers the ambiguous payer in the decisions file
        candidates = first[ambiguous]["detail"].split("(")[-1].rstrip(").").split(", ")
        owner = candidates[-1]
        decisions.write_text(
            yaml.safe_dump(
                {
                    "decisions": [
                        {
                            "system": "billing",
                            "object_type": "customers",
                            "record_id": ambiguous[2],
                            "reason_code": "ambiguous_owner",
                            "owner": owner,
                            "note": "finance confirmed",
                            "decided_by": "test",
                        }
                    ]
                }
            )
        )
        run_all(sandbox, warehouse_url, instance)  # the edited file applies: no cache to clear
    after = {(i["system"], i["object_type"], i["record_id"], i["reason_code"]): i for i in queue(warehouse_url)}
    assert after[bad_email]["status"] == "resolved"
    assert after[ambiguous]["status"] == "resolved"
    assert "finance confirmed" in after[ambiguous]["resolution"]
    still = [k for k, i in after.items() if i["status"] == "open"]
    assert still and all(after[k]["occurrences"] == 2 for k in still)
    assert len(after) == len(first)  # no duplicates: the same keys, counted twice
    warehouse = Warehouse.from_url(warehouse_url)
    linked = warehouse.query(
        "SELECT canonical_id, matched_by FROM canonical.record_map WHERE system = 'billing' "
        "AND object_type = 'customers' AND record_id = ?",
        [ambiguous[2]],
    )
    assert linked == [(owner, "decision")]
    email = warehouse.query("SELECT email FROM canonical.contacts WHERE contact_id = ?", [f"crm:{bad_email[2]}"])
    assert email == [("fixed.person@fixed-example.example",)]


def test_raw_contract_catches_drift(sandbox: Sandbox, tmp_path: Path) -> None:
    put_faults(
        sandbox,
        "seed: 1\nhubspot:\n  drift:\n    contacts:\n      remove: [email]\n"
        "zendesk:\n  drift:\n    tickets:\n      retype: {requester_id: string}\n",
    )
    url = str(tmp_path / "wh.duckdb")
    with DagsterInstance.ephemeral() as instance:
        result = run_all(sandbox, url, instance)
    items = queue(url, "open")
    violations = {(i["system"], i["object_type"]) for i in items if i["reason_code"] == "contract_violation"}
    assert violations == {("crm", "contacts"), ("support", "tickets")}
    contacts = [i for i in items if i["object_type"] == "contacts" and i["reason_code"] == "contract_violation"]
    assert "email: promised" in contacts[0]["detail"]
    meta = materialized(result)["canonical/customers"]
    live = sum(1 for r in sandbox_records(sandbox, "hubspot", "contacts") if not r.get("archived"))
    assert meta["crm_contacts_contract_failures"].value == live  # every live contact lost its email key
    report = check_stream(CATALOG.stream("crm/contacts"), {"1": {"id": "1", "archived": False, "properties": {}}})
    assert not report.ok and set(report.failure_cases["column"]) >= {"email", "phone"}
    for check in result.get_asset_check_evaluations():
        assert check.passed


def test_accounting_names_the_records_that_break_the_balance(sandbox: Sandbox, tmp_path: Path) -> None:
    """A record the build lost is listed by its vendor id in the check's records table and named in its summary."""
    from dagster import TableMetadataValue

    from integration_assets.canonical.assets import RECORD_MAP, accounting_balances

    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        result = run_all(sandbox, url, instance)
    passed = checks_of(result)["canonical/deals"]
    assert passed.passed and "each accepted" in passed.metadata["summary"].value
    assert passed.metadata["records_total"].value == 0
    warehouse = Warehouse.from_url(url)
    lost = str(warehouse.query(f"SELECT min(record_id) FROM {RECORD_MAP} WHERE asset = 'canonical/deals'")[0][0])
    with warehouse.transaction() as tx:
        tx.execute(f"DELETE FROM {RECORD_MAP} WHERE asset = 'canonical/deals' AND record_id = ?", [lost])
    failed = accounting_balances("deals", warehouse)
    assert not failed.passed
    table = failed.metadata["records"]
    assert isinstance(table, TableMetadataValue)
    assert [(r.data["system"], r.data["object_type"], r.data["id"], r.data["problem"]) for r in table.records] == [
        ("crm", "deals", lost, "unaccounted")
    ]
    assert f"crm/deals/{lost}" in failed.metadata["summary"].value and failed.description
    assert failed.metadata["sample_ids"].value == lost and failed.metadata["crm_deals_unaccounted"].value == 1
