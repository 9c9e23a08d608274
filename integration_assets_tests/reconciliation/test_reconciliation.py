"""Reconciliation checks end to end: a generated business served over HTTP, synced into a real warehouse, the
canonical model built, then each check's listed records judged against the generator's manifest (none missed,
none extra), against edits made at the vendors, and against rows removed from the raw tables. The four
cross-system checks run in one step; completeness runs in each stream's own step."""

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    TableMetadataValue,
    materialize,
)

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.evidence import EVIDENCE_KEYS, RECORDS_KEYS, mask
from integration_assets.core.warehouse import Warehouse
from integration_assets.reconciliation.common import DIFF_COLUMNS
from integration_assets.reconciliation.definitions import cross_system_checks
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults, sandbox_records
from integration_assets_tests.testing.sync import checked_sources, resources
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

COMPLETE = "complete_against_vendor"
COMPLETENESS = [AssetCheckKey(stream.asset_key, COMPLETE) for stream in CATALOG.streams]
EVERYTHING = [*checked_sources(COMPLETE), *canonical_assets, *cross_system_checks]
CANONICAL_CHECKS = {
    "won_deals_invoiced",
    "invoices_paid_by_payments",
    "customer_master_agrees",
    "tickets_known_people",
}
# the manifest's reconciliation defects, by the check that must list them
CHECK_OF_KIND = {
    "won_deal_without_invoice": "won_deals_invoiced",
    "invoice_amount_mismatch": "won_deals_invoiced",
    "charge_for_missing_invoice": "invoices_paid_by_payments",
    "paid_invoice_short": "invoices_paid_by_payments",
    "unknown_requester": "tickets_known_people",
}
MONEY = re.compile(r"-?\d{1,3}(,\d{3})*(\.\d+)? [A-Z]{3}")  # 49,250.00 USD; 150,000 JPY
PROBLEMS_OF_KIND = {  # the problem a check names for each kind of planted defect
    "won_deal_without_invoice": {"won_deal_without_invoice"},
    "invoice_amount_mismatch": {"invoice_amount_mismatch", "invoice_currency_mismatch"},
    "charge_for_missing_invoice": {"payment_for_missing_invoice"},
    "paid_invoice_short": {"paid_invoice_short"},
    "unknown_requester": {"unknown_requester"},
}


def run_everything(sandbox: Sandbox, url: str, instance: DagsterInstance, **kwargs):
    result = materialize(EVERYTHING, resources=resources(sandbox, url), instance=instance, **kwargs)
    assert result.success
    return result


def evaluations(result) -> dict[str, object]:
    """`asset/key:check_name` → the check's evaluation."""
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
        if e.check_name in CANONICAL_CHECKS | {COMPLETE}
    }


def by_name(result) -> dict[str, object]:
    return {key.split(":", 1)[1]: e for key, e in evaluations(result).items() if key.startswith("canonical/")}


def listed(evaluation) -> list[dict[str, object]]:
    """The records of the check's diff table, as the UI shows them (a Dagster table, typed columns)."""
    table = evaluation.metadata["records"]
    assert isinstance(table, TableMetadataValue)
    assert [c.name for c in table.schema.columns] == list(DIFF_COLUMNS)
    rows = [dict(record.data) for record in table.records]
    total = evaluation.metadata["records_total"].value
    assert total == evaluation.metadata["problems"].value == evaluation.metadata["records_shown"].value == len(rows), (
        "the table must not be cut for these judgements"
    )
    return rows


def shown_text(evaluation) -> str:
    """Everything the check's metadata shows, the table's cells included."""
    parts = []
    for entry in evaluation.metadata.values():
        if isinstance(entry, TableMetadataValue):
            parts += [str(v) for record in entry.records for v in record.data.values()]
        else:
            parts.append(str(entry.value))
    return " ".join(parts)


def refs(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(r["system"], r["object_type"], r["id"]) for r in rows}


@pytest.mark.parametrize(("seed", "scale", "rate"), [(7, 60, 0.3), (3, 40, 1.0)])
def test_checks_list_exactly_the_planted_defects(tmp_path: Path, seed: int, scale: int, rate: float) -> None:
    data = tmp_path / "data"
    manifest = generate(data, seed=seed, scale=scale, defect_rate=rate)
    url = str(tmp_path / "wh.duckdb")
    with Sandbox(data, ports=FREE_PORTS) as sandbox, DagsterInstance.ephemeral() as instance:
        result = run_everything(sandbox, url, instance)
    checks = by_name(result)
    assert set(checks) == CANONICAL_CHECKS
    for name in CANONICAL_CHECKS:
        expected = {
            (d["system"], d["object_type"], str(d["id"]))
            for d in manifest["defects"]
            if d["expected"] == "reconciliation" and CHECK_OF_KIND[d["kind"]] == name
        }
        rows = listed(checks[name])
        assert refs(rows) == expected, (name, refs(rows) ^ expected)
        assert checks[name].passed == (not expected)
        for defect in (d for d in manifest["defects"] if CHECK_OF_KIND.get(d["kind"]) == name):
            problems = {r["problem"] for r in rows if r["id"] == str(defect["id"])}
            assert problems and problems <= PROBLEMS_OF_KIND[defect["kind"]], (defect, problems)
    # each problem kind is a numeric count, the evidence keys are all there, severities follow the stakes
    deals = checks["won_deals_invoiced"]
    planted_missing = sum(1 for d in manifest["defects"] if d["kind"] == "won_deal_without_invoice")
    assert deals.metadata["won_deal_without_invoice"].value == planted_missing
    assert all(key in c.metadata for c in checks.values() for key in EVIDENCE_KEYS)
    assert deals.severity.value == "ERROR"
    # evidence that reads at a glance: money in major units with its currency and the minor-unit figure beside
    # it, no vendor link against the local sandbox, a summary naming records, the ticket's requester as its own
    # record
    for check in checks.values():
        if not check.passed:
            first = listed(check)[0]
            assert f"{first['system']}/{first['object_type']}/{first['id']}" in check.metadata["summary"].value
    for row in listed(deals):
        assert row["link"] is None
        if row["problem"] == "won_deal_without_invoice":
            assert isinstance(row["this_minor"], int)
            assert MONEY.search(str(row["this_side"])), row
        if row["problem"] == "invoice_amount_mismatch":
            assert MONEY.fullmatch(str(row["this_side"])) and MONEY.fullmatch(str(row["other_side"])), row
            assert isinstance(row["this_minor"], int) and isinstance(row["other_minor"], int)
            assert row["other_record"].startswith("crm/deals/")
    for row in listed(checks["tickets_known_people"]):
        if row["problem"] == "unknown_requester" and row["other_record"]:
            assert row["other_record"] != f"{row['system']}/{row['object_type']}/{row['id']}"
            assert row["other_record"] not in str(row["this_side"])
    assert checks["customer_master_agrees"].severity.value == "WARN"
    # the sync was complete: every source asset's count matches its vendor's
    complete = {k: e for k, e in evaluations(result).items() if k.endswith(":complete_against_vendor")}
    assert len(complete) == 9
    for key, evaluation in complete.items():
        assert evaluation.passed, (key, evaluation.metadata["summary"].value)


def test_checks_pass_on_a_clean_business(tmp_path: Path, warehouse_url: str) -> None:
    data = tmp_path / "data"
    generate(data, seed=5, scale=30, defect_rate=0.0)
    with Sandbox(data, ports=FREE_PORTS) as sandbox, DagsterInstance.ephemeral() as instance:
        result = run_everything(sandbox, warehouse_url, instance)
    found = evaluations(result)
    assert len(found) == len(CANONICAL_CHECKS) + len(COMPLETENESS)
    for key, evaluation in found.items():
        assert evaluation.passed, (key, evaluation.metadata["summary"].value, listed(evaluation))
        assert evaluation.metadata["problems"].value == 0


def _now_stamps() -> tuple[str, int]:
    now = time.time()
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), int(now)


def _store(sandbox: Sandbox, vendor: str, object_type: str, record: dict) -> None:
    stored = requests.post(f"{sandbox.url(vendor)}/__sandbox__/records/{object_type}", json=record, timeout=5)
    assert stored.status_code == 200, stored.text


def test_customer_master_lists_the_edited_zendesk_records(sandbox: Sandbox, warehouse_url: str) -> None:
    put_faults(sandbox, "zendesk: {incremental_lag_s: 0}")
    with DagsterInstance.ephemeral() as instance:
        first = by_name(run_everything(sandbox, warehouse_url, instance))
        assert first["customer_master_agrees"].passed, listed(first["customer_master_agrees"])
        warehouse = Warehouse.from_url(warehouse_url)
        linked = warehouse.frame(
            "SELECT source_records FROM canonical.customers WHERE NOT is_deleted AND source_records LIKE "
            "'%support/organizations/%'"
        )["source_records"]
        org_id = next(s for s in linked).split("support/organizations/")[1].split(",")[0]
        people = warehouse.frame(
            "SELECT source_records, email FROM canonical.contacts WHERE NOT is_deleted AND contact_id IS NOT NULL "
            "AND source_records LIKE '%support/users/%'"
        )
        person = people.iloc[0]
        user_id = person["source_records"].split("support/users/")[1].split(",")[0]
        stamp, epoch = _now_stamps()
        org = next(o for o in sandbox_records(sandbox, "zendesk", "organizations") if str(o["id"]) == org_id)
        _store(
            sandbox,
            "zendesk",
            "organizations",
            {**org, "name": org["name"] + " (old name)", "updated_at": stamp, "generated_timestamp": epoch},
        )
        user = next(u for u in sandbox_records(sandbox, "zendesk", "users") if str(u["id"]) == user_id)
        new_email = "someone.else@elsewhere.example"
        _store(
            sandbox,
            "zendesk",
            "users",
            {**user, "email": new_email, "updated_at": stamp, "generated_timestamp": epoch},
        )
        second = by_name(run_everything(sandbox, warehouse_url, instance))
    check = second["customer_master_agrees"]
    rows = listed(check)
    assert not check.passed
    assert refs(rows) == {("support", "organizations", org_id), ("support", "users", user_id)}
    by_ref = {r["id"]: r for r in rows}
    assert by_ref[org_id]["problem"] == "name_differs"
    assert by_ref[org_id]["this_side"] == org["name"] + " (old name)"  # a company name is not personal data
    email = by_ref[user_id]
    assert email["problem"] == "email_differs"
    assert (email["this_side"], email["other_side"]) == (mask(new_email), mask(person["email"]))
    assert new_email not in shown_text(check)
    assert email["other_record"].startswith("crm/contacts/")  # the owner's record, not the one at fault
    assert email["link"] is None and email["other_link"] is None  # the local sandbox has no pages to link
    assert check.metadata["email_differs"].value == 1 and check.metadata["name_differs"].value == 1


def test_completeness_sees_records_the_raw_tables_lack(sandbox: Sandbox, warehouse_url: str) -> None:
    with DagsterInstance.ephemeral() as instance:
        run_everything(sandbox, warehouse_url, instance)
        # after the sync: two contacts and a ticket are created at the vendors, and two invoice rows and a
        # deal row vanish from the warehouse
        contacts = sandbox_records(sandbox, "hubspot", "contacts")
        template = next(c for c in contacts if not c.get("archived"))
        for n in (1, 2):
            _store(sandbox, "hubspot", "contacts", {**template, "id": str(29_000_000 + n)})
        tickets = sandbox_records(sandbox, "zendesk", "tickets")
        _store(sandbox, "zendesk", "tickets", {**tickets[0], "id": max(t["id"] for t in tickets) + 1})
        warehouse = Warehouse.from_url(warehouse_url)
        gone_invoices = sorted(r[0] for r in warehouse.query("SELECT id FROM raw.billing_invoices"))[:2]
        with warehouse.transaction() as tx:
            for invoice_id in gone_invoices:
                tx.execute("DELETE FROM raw.billing_invoices WHERE id = ?", [invoice_id])
            tx.execute("DELETE FROM raw.crm_deals WHERE id = (SELECT min(id) FROM raw.crm_deals WHERE NOT is_deleted)")
        result = materialize(
            EVERYTHING,
            selection=AssetSelection.checks(*COMPLETENESS),
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
    found = {k.split(":")[0]: e for k, e in evaluations(result).items()}
    assert set(found) == {s.key for s in CATALOG.streams}
    failing = {key for key, e in found.items() if not e.passed}
    assert failing == {"crm/contacts", "support/tickets", "billing/invoices", "crm/deals"}
    contacts = found["crm/contacts"].metadata
    assert (contacts["missing_records"].value, contacts["extra_records"].value) == (2, 0)
    assert contacts["vendor_total"].value - contacts["loaded_live"].value == 2
    assert found["support/tickets"].metadata["missing_records"].value == 1
    assert found["crm/deals"].metadata["missing_records"].value == 1
    invoices = listed(found["billing/invoices"])
    assert refs(invoices) == {("billing", "invoices", i) for i in gone_invoices}  # Stripe names them
    assert {r["problem"] for r in invoices} == {"missing_records"}
    assert all(e.passed for key, e in found.items() if key not in failing)


def test_one_check_executes_alone_from_the_asset_graph(sandbox: Sandbox, warehouse_url: str) -> None:
    """What the UI launches for "Execute" on one check: the implicit asset job, subset to that check and no asset.
    The cross-system step runs, evaluates that check only, and materializes nothing."""
    from integration_assets.definitions import defs as project

    key = AssetCheckKey(AssetKey(["canonical", "deals"]), "won_deals_invoiced")
    assert key in project.resolve_implicit_global_asset_job_def().asset_layer.asset_graph.asset_check_keys
    with DagsterInstance.ephemeral() as instance:
        run_everything(sandbox, warehouse_url, instance)
        graph = Definitions(assets=EVERYTHING, resources=resources(sandbox, warehouse_url))
        implicit = graph.resolve_implicit_global_asset_job_def()
        job = implicit.get_subset(asset_check_selection={key}, asset_selection=set())
        result = job.execute_in_process(instance=instance)
    assert result.success
    assert not result.get_asset_materialization_events()
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.check_name) == (key.asset_key, key.name)
    assert isinstance(evaluation.metadata["records"], TableMetadataValue)
    assert all(name in evaluation.metadata for name in (*EVIDENCE_KEYS, *RECORDS_KEYS))


def test_findings_that_persist_page_once_and_new_ones_are_named(sandbox: Sandbox, warehouse_url: str) -> None:
    """The alert of a failing check fires once per problem (the check): evaluated again with the same findings,
    it stays quiet, its metadata counting them as persisting; a new record at fault is named on its own."""
    from integration_assets.core.dagster_adapter import EventPosition
    from integration_assets.core.monitoring_config import load_monitoring
    from integration_assets.monitoring.alerts import apply_observations, ensure_alerts_table, load_alerts
    from integration_assets.monitoring.sensors import family_of, read_check_observations

    families = [family_of(name) for name in CANONICAL_CHECKS]
    warehouse = Warehouse.from_url(warehouse_url)
    ensure_alerts_table(warehouse)
    owners = load_monitoring().owners
    with DagsterInstance.ephemeral() as instance:
        first = by_name(run_everything(sandbox, warehouse_url, instance))
        observations, after = read_check_observations(instance, EventPosition(), families, owners)
        opened = apply_observations(warehouse, observations, ["jsonl:pager"]).opened
        payments = first["invoices_paid_by_payments"]
        assert not payments.passed
        assert "check:canonical/payments:invoices_paid_by_payments" in {a.problem_key for a in opened}
        alert = next(a for a in opened if a.check_name == "invoices_paid_by_payments")
        assert alert.evidence["counts"]["new_findings"] == payments.metadata["problems"].value

        second = by_name(run_everything(sandbox, warehouse_url, instance))  # the same findings
        observations, after = read_check_observations(instance, after, families, owners)
        again = apply_observations(warehouse, observations, ["jsonl:pager"])
        assert not again.opened and not again.escalated  # no second page
        for name, check in second.items():
            if not check.passed:
                assert check.metadata["new_findings"].value == 0, name
                assert check.metadata["persisting_findings"].value == check.metadata["problems"].value

        # a charge's invoice vanishes from the warehouse: one new finding, named alone, still no new page
        charge = warehouse.query(  # a clean charge of a clean invoice
            "SELECT p.invoice_id FROM canonical.payments AS p JOIN canonical.invoices AS i "
            "ON i.invoice_id = p.invoice_id WHERE NOT p.is_deleted AND p.status = 'succeeded' "
            "AND p.currency = i.currency AND NOT EXISTS (SELECT 1 FROM ops.reconciliation_findings AS f "
            "WHERE f.status = 'open' AND 'billing:' || f.record_id IN (p.payment_id, i.invoice_id)) "
            "ORDER BY p.payment_id LIMIT 1"
        )[0][0]
        with warehouse.transaction() as tx:
            tx.execute("DELETE FROM raw.billing_invoices WHERE id = ?", [charge.split(":", 1)[1]])
        key = AssetCheckKey(AssetKey(["canonical", "payments"]), "invoices_paid_by_payments")
        result = materialize(
            EVERYTHING,
            selection=AssetSelection.checks(key),
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
        third = by_name(result)["invoices_paid_by_payments"].metadata
        assert third["new_findings"].value >= 1
        new = third["new_records"].value
        assert new.startswith("billing/charges/") and "billing/charges/" in third["summary"].value
        assert third["persisting_findings"].value == payments.metadata["problems"].value
        observations, _ = read_check_observations(instance, after, families, owners)
        later = apply_observations(warehouse, observations, ["jsonl:pager"])
        assert not later.opened and not later.escalated
        assert len(load_alerts(warehouse, "check:canonical/payments:invoices_paid_by_payments")) == 1
