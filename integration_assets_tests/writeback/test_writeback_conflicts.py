"""Never over newer data: the planted organizations edited after their CRM company keep their plan, a deal
property a person set after the billing event is kept, a 409 from safe_update means re-read and decide again;
and a dry run of every flow changes nothing anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from dagster import AssetSelection, DagsterInstance, materialize

from integration_assets.mapping.normalize import Money
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets.writeback.assets import flow_key
from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_assets_tests.testing.sync import resources
from integration_assets_tests.testing.writeback import (
    EVERYTHING,
    HUBSPOT_HEADERS,
    run_flows,
    sync,
    table,
    value,
    won_deal,
)
from integration_sandbox.server import Sandbox

FLOWS = ("crm_to_billing", "billing_to_crm", "crm_to_support")


def organizations(sandbox: Sandbox) -> dict[str, dict]:
    return {str(o["id"]): o for o in sandbox_records(sandbox, "zendesk", "organizations")}


def test_target_newer_than_source_is_not_overwritten(sandbox: Sandbox, dataset: Path, warehouse_url: str) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text())
    planted = {str(d["id"]) for d in manifest["defects"] if d["kind"] == "target_newer_than_source"}
    before = organizations(sandbox)
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, warehouse_url, instance)
        # a person records the invoice status by hand on one deal, after its invoice changed
        deal = table(warehouse_url, "SELECT deal_id FROM canonical.deals WHERE invoice_status = 'paid' LIMIT 1")
        deal_id = deal[0]["deal_id"].split(":", 1)[1]
        patched = requests.patch(
            f"{sandbox.url('hubspot')}/crm/v3/objects/deals/{deal_id}",
            json={"properties": {"invoice_status": "paid by wire, see note"}},
            headers=HUBSPOT_HEADERS,
            timeout=5,
        )
        assert patched.status_code == 200
        _, metadata = run_flows(sandbox, warehouse_url, instance, "crm_to_support", "billing_to_crm")
    after = organizations(sandbox)
    assert planted and value(metadata["crm_to_support"], "conflict") == len(planted)
    for org in planted:
        assert after[org]["organization_fields"] == before[org]["organization_fields"]
        assert after[org]["updated_at"] == before[org]["updated_at"]
    logged = table(warehouse_url, "SELECT * FROM ops.sync_log WHERE status = 'conflict' AND flow = 'crm_to_support'")
    assert {r["destination_id"] for r in logged} == planted
    assert all("not overwritten" in r["detail"] for r in logged)
    items = table(warehouse_url, "SELECT * FROM ops.review_queue WHERE reason_code = 'write_conflict'")
    assert {(i["system"], i["object_type"], i["record_id"]) for i in items} >= {
        ("support", "organizations", org) for org in planted
    }
    # billing → CRM: the person's newer value is kept; the other deals got billing's status
    (kept,) = [d for d in sandbox_records(sandbox, "hubspot", "deals") if d["id"] == deal_id]
    assert kept["properties"]["invoice_status"] == "paid by wire, see note"
    assert value(metadata["billing_to_crm"], "conflict") == 1
    # the person's free text is theirs: masked in the sync log, the review queue and the run's metadata
    (conflict,) = table(
        warehouse_url, "SELECT * FROM ops.sync_log WHERE flow = 'billing_to_crm' AND status = 'conflict'"
    )
    (item,) = table(warehouse_url, "SELECT * FROM ops.review_queue WHERE found_by = 'writeback/billing_to_crm'")
    texts = [conflict["detail"], item["detail"], metadata["billing_to_crm"]["results"].value]
    assert all("paid by wire" not in text for text in texts) and "•••" in conflict["detail"]
    assert value(metadata["billing_to_crm"], "updated") > 0
    statuses = {d["properties"].get("invoice_status") for d in sandbox_records(sandbox, "hubspot", "deals")}
    assert statuses - {None, "paid by wire, see note"} <= {"draft", "open", "paid", "void", "uncollectible"}
    companies = {d["properties"].get("invoice_status") for d in sandbox_records(sandbox, "hubspot", "companies")}
    assert companies == {None}  # billing owns no company property: none is written


class PersonEditsAfterTheRead(ZendeskResource):
    """Zendesk as the flow meets it when a person is at work: right after the flow's read of one organization
    comes back, the person saves their version of it (a requests response hook on the flow's own session)."""

    organization_id: str
    edited: str  # the organization as the person saves it, JSON

    def client(self, connector: str, run_id: str = "", seed: int | None = None):
        client = super().client(connector, run_id, seed)
        records = f"{self.base_url}/__sandbox__/records/organizations"

        def person_edits(response, *args, **kwargs):
            path = response.request.path_url.split("?")[0]
            if response.request.method == "GET" and path.endswith(f"/organizations/{self.organization_id}.json"):
                requests.post(records, data=self.edited, timeout=5).raise_for_status()

        client.session.hooks["response"].append(person_edits)
        return client


def test_a_409_means_read_again_and_decide_again(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        first = table(
            url,
            "SELECT customer_id, support_organization_id, crm_updated_at FROM canonical.customers "
            "WHERE support_organization_id IS NOT NULL AND NOT is_deleted ORDER BY customer_id LIMIT 1",
        )[0]
        org_id = first["support_organization_id"].split(":", 1)[1]
        org = organizations(sandbox)[org_id]
        plan = org["organization_fields"]["plan"]
        stale = {
            **org,
            "organization_fields": {
                **org["organization_fields"],
                "plan": "starter" if plan != "starter" else "enterprise",
            },
        }
        older = first["crm_updated_at"].to_pydatetime().timestamp() - 3600
        stale["updated_at"] = datetime.fromtimestamp(older, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        requests.post(f"{sandbox.url('zendesk')}/__sandbox__/records/organizations", json=stale, timeout=5)
        # between the flow's read and its update, a person saves the organization with another plan
        edited = {
            **stale,
            "organization_fields": {**stale["organization_fields"], "plan": "professional"},
            "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        person = PersonEditsAfterTheRead(
            **{
                **resources(sandbox, url)["zendesk"].model_dump(),
                "organization_id": org_id,
                "edited": json.dumps(edited),
            }
        )
        result = materialize(
            EVERYTHING,
            selection=AssetSelection.assets(flow_key("crm_to_support")),
            resources={**resources(sandbox, url), "zendesk": person},
            instance=instance,
        )
        assert result.success
    assert organizations(sandbox)[org_id]["organization_fields"] == edited["organization_fields"]  # the person's
    (row,) = table(url, "SELECT * FROM ops.sync_log WHERE record_id = ?", [first["customer_id"]])
    assert row["status"] == "conflict" and "not overwritten" in row["detail"]
    calls = table(url, "SELECT method, status FROM ops.api_calls WHERE run_id = ? AND method = 'PUT'", [result.run_id])
    assert [c["status"] for c in calls] == [409]  # refused, re-read, decided: no second PUT


def test_dry_run_writes_nothing_and_reports_what_would_change(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    snapshot = {
        (vendor, kind): sandbox_records(sandbox, vendor, kind)
        for vendor, kind in [
            ("stripe", "customers"),
            ("stripe", "invoices"),
            ("hubspot", "deals"),
            ("zendesk", "organizations"),
        ]
    }
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        _, metadata = run_flows(sandbox, url, instance, *FLOWS, dry_run=True)
    for (vendor, kind), records in snapshot.items():
        assert sandbox_records(sandbox, vendor, kind) == records, (vendor, kind)
    assert value(metadata["crm_to_billing"], "would_create") >= 1
    assert value(metadata["billing_to_crm"], "would_update") > 0
    assert value(metadata["crm_to_support"], "conflict") >= 1
    for flow in FLOWS:
        assert value(metadata[flow], "dry_run") is True
        assert value(metadata[flow], "created") == value(metadata[flow], "updated") == 0
        assert "would_" in metadata[flow]["results"].value or flow == "crm_to_support"
    assert table(url, "SELECT count(*) AS n FROM ops.sync_log")[0]["n"] == 0
    assert table(url, "SELECT count(*) AS n FROM ops.outbox")[0]["n"] == 0
    assert table(url, "SELECT count(*) AS n FROM ops.review_queue WHERE found_by LIKE 'writeback/%'")[0]["n"] == 0


def stripe_post(sandbox: Sandbox, path: str, data: dict | None = None) -> dict:
    response = requests.post(
        f"{sandbox.url('stripe')}{path}",
        data=data or {},
        headers={"Authorization": "Bearer sk_test_sandbox"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def patch_deal(sandbox: Sandbox, deal: str, properties: dict) -> None:
    response = requests.patch(
        f"{sandbox.url('hubspot')}/crm/v3/objects/deals/{deal}",
        json={"properties": properties},
        headers=HUBSPOT_HEADERS,
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_payment_status_follows_the_invoice_whatever_else_changed_on_the_deal(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    flow = "billing_to_crm"
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        run_flows(sandbox, url, instance, flow)
        # deals this flow left at `open`, whose Stripe invoice is open
        left = table(
            url,
            "SELECT destination_id, written_values FROM ops.sync_log WHERE flow = ? AND status IN ('updated', "
            "'unchanged') ORDER BY destination_id",
            [flow],
        )
        invoices = {
            str(i["metadata"].get("hubspot_deal_id")): i
            for i in sandbox_records(sandbox, "stripe", "invoices")
            if i["status"] == "open" and (i.get("metadata") or {}).get("hubspot_deal_id")
        }
        open_deals = [r["destination_id"] for r in left if (r["written_values"] or {}).get("invoice_status") == "open"]
        paid, disputed = [d for d in open_deals if d in invoices][:2]
        # the client pays; then the salesperson edits the deal's next step, not its invoice status
        stripe_post(sandbox, f"/v1/invoices/{invoices[paid]['id']}/pay", {"paid_out_of_band": "true"})
        patch_deal(sandbox, paid, {"hs_next_step": "renewal call in May"})
        # on another deal a person records their own status, after its invoice was finalized
        patch_deal(sandbox, disputed, {"invoice_status": "disputed, see Ann's note"})
        sync(sandbox, url, instance)
        _, metadata = run_flows(sandbox, url, instance, flow)
    deals = {d["id"]: d for d in sandbox_records(sandbox, "hubspot", "deals")}
    assert deals[paid]["properties"]["invoice_status"] == "paid"  # billing's: the other edit does not block it
    assert deals[paid]["properties"]["hs_next_step"] == "renewal call in May"
    assert deals[disputed]["properties"]["invoice_status"] == "disputed, see Ann's note"  # the person's, kept
    logged = {
        r["destination_id"]: r
        for r in table(url, "SELECT * FROM ops.sync_log WHERE run_id <> '' AND flow = ? ORDER BY logged_at", [flow])
    }
    assert logged[paid]["status"] == "updated" and logged[disputed]["status"] == "conflict"
    assert "Ann" not in logged[disputed]["detail"] and "Ann" not in metadata[flow]["results"].value


def test_crm_to_support_decides_each_field_against_what_it_last_wrote(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "wh.duckdb")
    flow = "crm_to_support"
    records = f"{sandbox.url('zendesk')}/__sandbox__/records/organizations"
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        run_flows(sandbox, url, instance, flow)
        delivered = table(
            url,
            "SELECT record_id, destination_id, destination_version FROM ops.sync_log WHERE flow = ? "
            "AND status IN ('updated', 'unchanged') ORDER BY record_id",
            [flow],
        )
        orgs = organizations(sandbox)
        assert len(delivered) >= 8

        def edit(org: str, recorded: str, **fields) -> None:
            """A support agent saves the organization (after the flow's write: a later second)."""
            at = max(datetime.now(UTC), datetime.fromisoformat(recorded.replace("Z", "+00:00")) + timedelta(seconds=1))
            record = organizations(sandbox)[org]
            record = {
                **record,
                "organization_fields": {**record["organization_fields"], **fields},
                "updated_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            requests.post(records, json=record, timeout=5).raise_for_status()

        owner_edited, plan_edited, *others = delivered[:8]
        # an agent changes the account owner (support's field); then the client wins another deal in the CRM
        edit(owner_edited["destination_id"], owner_edited["destination_version"], account_owner="Support Desk 2")
        # another agent changes the plan itself (the CRM's field): a person's newer value
        held = orgs[plan_edited["destination_id"]]["organization_fields"]["plan"]
        theirs = next(p for p in ("starter", "professional", "enterprise") if p != held)
        edit(plan_edited["destination_id"], plan_edited["destination_version"], plan=theirs)
        for client in (owner_edited, *others):
            won_deal(sandbox, client["record_id"].split(":", 1)[1], "4321.00")
        sync(sandbox, url, instance)
        # half of Zendesk's answers to writes are lost after the write applied: the retry gets a 409, the re-read
        # finds our values, and our version is recorded all the same
        put_faults(sandbox, "seed: 9\nzendesk:\n  writes: {apply_then_drop: 0.5}\n")
        second, _ = run_flows(sandbox, url, instance, flow)
        put_faults(sandbox, "seed: 9\n")
    puts = table(url, "SELECT status FROM ops.api_calls WHERE run_id = ? AND method = 'PUT'", [second.run_id])
    assert 409 in {c["status"] for c in puts}
    after = organizations(sandbox)
    logged = {r["record_id"]: r for r in table(url, "SELECT * FROM ops.sync_log WHERE run_id = ?", [second.run_id])}
    for row in logged.values():
        if row["status"] in ("updated", "unchanged"):  # our version is known, lost answers or not
            assert row["destination_version"] == after[row["destination_id"]]["updated_at"], row
    assert {logged[c["record_id"]]["status"] for c in others} <= {"updated", "unchanged"}
    assert any(logged[c["record_id"]]["status"] == "unchanged" for c in others)  # a lost answer, then a 409
    (expected,) = table(
        url,
        "SELECT lifetime_value, lifetime_value_currency FROM canonical.customers WHERE customer_id = ?",
        [owner_edited["record_id"]],
    )
    ltv = Money(int(expected["lifetime_value"]), expected["lifetime_value_currency"]).major_text()
    fields = after[owner_edited["destination_id"]]["organization_fields"]
    assert fields["account_owner"] == "Support Desk 2"  # support's own field, untouched
    assert float(fields["lifetime_value"]) == float(ltv)  # ours, updated despite the edit
    assert logged[owner_edited["record_id"]]["status"] == "updated"
    assert after[plan_edited["destination_id"]]["organization_fields"]["plan"] == theirs  # the person's, kept
    assert logged[plan_edited["record_id"]]["status"] == "conflict"
