"""Flow 1 (CRM → billing) drills against the sandbox over HTTP, a real warehouse and Dagster: lost responses
never duplicate, a refused value goes to review while the batch goes on, a write outside the flow's grant is
never sent, a dry run writes nothing, and a create Stripe replays for another run is logged as a replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import requests
import yaml
from dagster import AssetSelection, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.config import default_path
from integration_assets.core.warehouse import Warehouse
from integration_assets.writeback.sync_log import destination_ids
from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_assets_tests.testing.sync import SOURCES, resources
from integration_assets_tests.testing.writeback import (
    EVERYTHING,
    HUBSPOT_HEADERS,
    customers_per_company,
    invoices_per_deal,
    new_business,
    run_flows,
    sync,
    table,
    value,
    won_deal,
    won_deal_ids,
)
from integration_sandbox.server import Sandbox

FLOW = "crm_to_billing"


def in_review(dataset: Path) -> set[str]:
    manifest = json.loads((dataset / "manifest.json").read_text())
    return {str(d["id"]) for d in manifest["defects"] if d["expected"] == "review"}


def test_lost_responses_never_duplicate(sandbox: Sandbox, dataset: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    made = new_business(sandbox, companies=10, deals_each=2, prefix="Drop")
    defects = json.loads((dataset / "manifest.json").read_text())["defects"]
    uninvoiced = [str(d["id"]) for d in defects if d["kind"] == "won_deal_without_invoice"]
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        # what the plan must make, from the synced data: the won deals of a resolved client with no invoice past
        # draft, and a customer for each of their clients that billing does not know yet
        owed = table(
            url,
            "SELECT d.deal_id, c.customer_id, c.billing_customer_id FROM canonical.deals d JOIN canonical.customers c "
            "ON c.customer_id = d.customer_id AND NOT c.is_deleted WHERE d.stage = 'won' AND NOT d.is_deleted",
        )
        invoiced = {
            f"crm:{i['metadata'].get('hubspot_deal_id')}"
            for i in sandbox_records(sandbox, "stripe", "invoices")
            if i.get("status") != "draft" and (i.get("metadata") or {}).get("hubspot_deal_id")
        }
        owed = [o for o in owed if o["deal_id"] not in invoiced]
        new_customers = {o["customer_id"] for o in owed if o["billing_customer_id"] is None}
        put_faults(sandbox, "seed: 11\nstripe:\n  writes: {apply_then_drop: 0.35}\n")
        _, metadata = run_flows(sandbox, url, instance, FLOW)
        first = metadata[FLOW]
        # the same plan again (the warehouse has not seen the new invoices yet): found, never made twice
        _, again = run_flows(sandbox, url, instance, FLOW)

    stats = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5).json()["stripe"]
    posts = table(url, "SELECT count(*) AS n FROM ops.api_calls WHERE connector = ? AND method = 'POST'", [FLOW])
    assert stats["fault:apply_then_drop"] >= 0.2 * posts[0]["n"] > 0, (stats, posts)
    made_deals = {f"crm:{d}" for deals in made.values() for d in deals}
    assert uninvoiced and {f"crm:{d}" for d in uninvoiced} | made_deals <= {o["deal_id"] for o in owed}
    assert value(first, "created") == len(new_customers) + len(owed)  # customers, then invoices
    assert value(first, "queued") == value(first, "failed") == 0
    assert value(again[FLOW], "created") == 0 and value(again[FLOW], "unchanged") == value(first, "writes")

    invoices, customers = invoices_per_deal(sandbox), customers_per_company(sandbox)
    assert max(invoices.values()) == 1 and max(customers.values()) == 1  # no duplicate anywhere
    for deal in won_deal_ids(sandbox) - in_review(dataset):
        assert invoices[deal] == 1, deal  # every closed-won deal invoiced exactly once, the planted ones too
    assert all(invoices[d] == 1 for d in uninvoiced)
    assert {c: customers[c] for c in made} == dict.fromkeys(made, 1)
    for deal in (d for deals in made.values() for d in deals):
        (invoice,) = [
            i for i in sandbox_records(sandbox, "stripe", "invoices") if i["metadata"].get("hubspot_deal_id") == deal
        ]
        assert invoice["status"] == "open" and invoice["total"] > 0 and invoice["collection_method"] == "send_invoice"


def test_refused_value_goes_to_review_and_the_batch_goes_on(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    made = new_business(sandbox, companies=3, deals_each=1, prefix="Refused")
    company = next(iter(made))
    too_big = won_deal(sandbox, company, "1500000.00")  # 150,000,000 cents: above Stripe's limit for one line
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        _, metadata = run_flows(sandbox, url, instance, FLOW)
        # the warehouse now sees the draft the refused line left behind: a draft without its line is no invoice
        sync(sandbox, url, instance)
        _, again = run_flows(sandbox, url, instance, FLOW)
    assert value(metadata[FLOW], "rejected") == 1 and value(again[FLOW], "rejected") == 1
    invoices = invoices_per_deal(sandbox)
    assert all(invoices[d] == 1 for deals in made.values() for d in deals)  # the rest of the batch was delivered
    assert invoices[too_big] == 1  # its draft, kept for the retry: never a second one
    (draft,) = [
        i for i in sandbox_records(sandbox, "stripe", "invoices") if i["metadata"].get("hubspot_deal_id") == too_big
    ]
    assert draft["status"] == "draft" and draft["total"] == 0
    (item,) = table(url, "SELECT * FROM ops.review_queue WHERE record_id = ?", [too_big])
    assert (item["system"], item["object_type"], item["reason_code"]) == ("crm", "deals", "write_rejected")
    assert "less than or equal to 99999999" in item["detail"] and "HTTP 400" in item["detail"]
    assert "less than or equal to 99999999" in item["next_action"] and item["found_by"] == f"writeback/{FLOW}"
    assert item["status"] == "open" and item["occurrences"] == 2
    logged = table(url, "SELECT * FROM ops.sync_log WHERE record_id = ? ORDER BY logged_at", [f"crm:{too_big}"])
    assert [r["status"] for r in logged] == ["rejected", "rejected"]
    assert logged[0]["error_category"] == "rejected_value" and logged[0]["idempotency_key"].startswith("ia:")


def test_missing_scope_is_blocked_before_sending(sandbox: Sandbox, tmp_path: Path, config_dir: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    policy = yaml.safe_load(default_path("access_policy.yaml").read_text())
    policy["connectors"][FLOW]["allow"]["invoices"] = ["read"]  # the flow may no longer create invoices
    (config_dir / "access_policy.yaml").write_text(yaml.safe_dump(policy))  # the operator's copy wins
    new_business(sandbox, companies=2, deals_each=1, prefix="Scope")
    before = {i["id"] for i in sandbox_records(sandbox, "stripe", "invoices")}
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        requests.delete(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5)
        result, metadata = run_flows(sandbox, url, instance, FLOW)
    assert value(metadata[FLOW], "blocked") >= 2
    assert {i["id"] for i in sandbox_records(sandbox, "stripe", "invoices")} == before
    blocked = table(url, "SELECT * FROM ops.sync_log WHERE status = 'blocked'")
    assert {r["object_type"] for r in blocked} == {"invoices"}
    for row in blocked:
        assert row["error_category"] == "permission_denied" and "blocked before sending" in row["error"]
        assert "allow 'create' on 'invoices'" in row["next_action"] and "access_policy.yaml" in row["next_action"]
    # every request Stripe saw is a logged call of this run, and no call created an invoice
    calls = table(url, "SELECT method, endpoint FROM ops.api_calls WHERE run_id = ?", [result.run_id])
    stats = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5).json()["stripe"]
    assert stats.get("requests", 0) == len(calls)
    assert ("POST", "/v1/invoices") not in {(c["method"], c["endpoint"]) for c in calls}


def test_an_unexpected_answer_fails_one_write_and_what_was_applied_is_recorded(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = str(tmp_path / "wh.duckdb")
    made = new_business(sandbox, companies=2, deals_each=1, prefix="Broken")
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        # Stripe's invoices come back without their id: the flow's code meets a KeyError, not an IntegrationError
        put_faults(sandbox, "seed: 2\nstripe:\n  drift:\n    invoices: {remove: [id]}\n")
        result, metadata = run_flows(sandbox, url, instance, FLOW)
        logged = table(url, "SELECT * FROM ops.sync_log WHERE run_id = ?", [result.run_id])
        customers = {f"crm:{c}" for c in made}
        # the customers made before the failures are in the sync log, each failure is one failed write
        assert {r["record_id"] for r in logged if r["status"] == "created"} >= customers
        failed = [r for r in logged if r["status"] == "failed"]
        assert failed and value(metadata[FLOW], "failed") == len(failed)
        assert all("KeyError" in r["error"] and r["error_category"] == "unknown" for r in failed)
        assert table(url, "SELECT count(*) AS n FROM ops.outbox WHERE status = 'pending'")[0]["n"] == 0
        # Stripe answers whole again: the next run finds the customers and the drafts, and finishes them
        put_faults(sandbox, "seed: 2\n")
        _, again = run_flows(sandbox, url, instance, FLOW)
    assert value(again[FLOW], "failed") == 0 and value(again[FLOW], "created") == 0
    assert {c: customers_per_company(sandbox)[c] for c in made} == dict.fromkeys(made, 1)
    invoices = invoices_per_deal(sandbox)
    for deal in (d for deals in made.values() for d in deals):
        assert invoices[deal] == 1
        (invoice,) = [
            i for i in sandbox_records(sandbox, "stripe", "invoices") if i["metadata"].get("hubspot_deal_id") == deal
        ]
        assert invoice["status"] == "open" and invoice["total"] > 0


def test_a_renamed_client_within_the_search_lag_gets_no_second_customer(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    made = new_business(sandbox, companies=1, deals_each=1, prefix="Lag")
    ((company, (deal,)),) = made.items()
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        # Stripe's search trails its writes; invoices cannot be created this run: the customer is made, the
        # invoice waits in the outbox
        lag = "seed: 4\nstripe:\n  search_lag_s: 600\n"
        put_faults(sandbox, lag + '  routes:\n    "POST /v1/invoices": {rates: {503: 1.0}}\n')
        run_flows(sandbox, url, instance, FLOW)
        statuses = {(r["record_id"], r["status"]) for r in table(url, "SELECT record_id, status FROM ops.sync_log")}
        assert {(f"crm:{company}", "created"), (f"crm:{deal}", "queued")} <= statuses
        # the salesperson renames the client; the CRM is synced again, billing not yet (its sync lags or failed)
        renamed = requests.patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/companies/{company}",
            json={"properties": {"name": "Lag Client Renamed Inc"}},
            headers=HUBSPOT_HEADERS,
            timeout=5,
        )
        assert renamed.status_code == 200
        crm = [a for a in SOURCES if a.key.path[0] == "crm"]
        selection = AssetSelection.assets(*crm, *canonical_assets)
        assert materialize(
            EVERYTHING, selection=selection, resources=resources(sandbox, url), instance=instance
        ).success
        (client,) = table(
            url, "SELECT name, billing_customer_id FROM canonical.customers WHERE customer_id = ?", [f"crm:{company}"]
        )
        assert client["name"] == "Lag Client Renamed Inc" and client["billing_customer_id"] is None
        put_faults(sandbox, lag)
        run_flows(sandbox, url, instance, FLOW)
    assert customers_per_company(sandbox)[company] == 1  # found by the id this flow recorded, not made twice
    logged = table(url, "SELECT * FROM ops.sync_log WHERE record_id = ? ORDER BY logged_at", [f"crm:{company}"])
    assert [r["status"] for r in logged] == ["created", "unchanged"]
    assert invoices_per_deal(sandbox)[deal] == 1
    assert len({r["idempotency_key"] for r in logged}) == 1  # the customer's key does not change with its name


def test_a_second_run_replayed_by_stripe_is_logged_as_a_replay_not_a_creation(sandbox: Sandbox, tmp_path: Path) -> None:
    """Two runs deliver the same plan, as two runs at once do: the second finds nothing yet (it read the sync
    log before the first wrote to it, Stripe's search lags) and sends the same idempotency key; Stripe answers
    with the first request's stored answer (`Idempotent-Replayed: true`). That made nothing: logged
    `idempotent_replay`."""
    first_url, second_url = str(tmp_path / "first.duckdb"), str(tmp_path / "second.duckdb")
    made = new_business(sandbox, companies=3, deals_each=1, prefix="Twice")
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, first_url, instance)
        shutil.copyfile(first_url, second_url)  # the second run reads the warehouse as it was before the first
        put_faults(sandbox, "seed: 5\nstripe:\n  search_lag_s: 600\n")
        _, first = run_flows(sandbox, first_url, instance, FLOW)
        _, second = run_flows(sandbox, second_url, instance, FLOW)

    companies = {f"crm:{c}" for c in made}
    assert {c: customers_per_company(sandbox)[c] for c in made} == dict.fromkeys(made, 1)  # nothing made twice
    query = "SELECT record_id, status, destination_id, detail FROM ops.sync_log WHERE object_type = 'customers'"
    created = {r["record_id"]: r for r in table(first_url, query) if r["record_id"] in companies}
    replayed = {r["record_id"]: r for r in table(second_url, query) if r["record_id"] in companies}
    assert {r["status"] for r in created.values()} == {"created"} and set(created) == companies
    assert {r["status"] for r in replayed.values()} == {"idempotent_replay"} and set(replayed) == companies
    for company, row in replayed.items():
        assert row["destination_id"] == created[company]["destination_id"]  # the record the first run made
        assert "replayed" in row["detail"]
    assert value(first[FLOW], "idempotent_replay") == 0
    assert value(second[FLOW], "idempotent_replay") == len(made)
    assert value(second[FLOW], "created") == 0  # the invoices: found by listing the customer's, never made twice
    every = table(second_url, "SELECT status, count(*) AS n FROM ops.sync_log GROUP BY status")
    assert "created" not in {r["status"] for r in every}
    # and the flow knows the replayed customers as its own next time: read by id, not searched for
    known = destination_ids(Warehouse.from_url(second_url), FLOW, "customers")
    assert {c: known[c] for c in companies} == {c: created[c]["destination_id"] for c in companies}
