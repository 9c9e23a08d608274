"""Drill: records deleted at the source stay accounted for.

A Stripe customer and a HubSpot contact, or a Zendesk organization, are deleted between two syncs; the raw
tables keep their rows with `is_deleted`, and every canonical asset must still account for every raw record:
accepted (a deleted one as deleted), or in review, never neither. Against the sandbox, on DuckDB and on
PostgreSQL.
"""

from __future__ import annotations

import pandas as pd
from dagster import AssetKey, DagsterInstance, materialize

from integration_assets.canonical.assets import RECORD_MAP, accounting_balances, assets
from integration_assets.canonical.build import OWN, Built, _enforce
from integration_assets.canonical.build.records import _Reader
from integration_assets.canonical.review import TABLE as REVIEW
from integration_assets.canonical.review import Decisions
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets_tests.testing import stripe
from integration_assets_tests.testing.hubspot import api as hubspot_api
from integration_assets_tests.testing.sandbox import put_faults
from integration_assets_tests.testing.sync import SOURCES, checked_sources, materialized, resources
from integration_sandbox.clients import session
from integration_sandbox.server import Sandbox

ENTITIES = tuple(OWN)
ORGANIZATIONS, RAW_ORGANIZATIONS = AssetKey(["support", "organizations"]), "raw.support_organizations"


def zendesk_api(sandbox: Sandbox, method: str, path: str):
    """A call to the Zendesk sandbox as an admin would make it."""
    return session("zendesk").request(method, sandbox.url("zendesk") + path, timeout=5)


def run_all(sandbox: Sandbox, warehouse_url: str, instance: DagsterInstance):
    """Sync every stream, then build every canonical asset with its checks, as the automation does."""
    result = materialize([*SOURCES, *assets], resources=resources(sandbox, warehouse_url), instance=instance)
    assert result.success
    return result


def balances(result) -> dict[str, object]:
    return {
        c.asset_key.to_user_string(): c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "accounting_balances"
    }


def accepted_ids(warehouse: Warehouse, system: str, object_type: str) -> list[str]:
    rows = warehouse.query(
        f"SELECT record_id FROM {RECORD_MAP} WHERE system = ? AND object_type = ? ORDER BY record_id",
        [system, object_type],
    )
    return [str(r[0]) for r in rows]


def open_ids(warehouse: Warehouse, system: str, object_type: str) -> list[str]:
    rows = warehouse.query(
        f"SELECT DISTINCT record_id FROM {REVIEW} WHERE system = ? AND object_type = ? AND status = 'open' "
        "ORDER BY record_id",
        [system, object_type],
    )
    return [str(r[0]) for r in rows]


def test_a_deleted_stripe_customer_and_hubspot_contact_keep_the_accounting_balanced(
    sandbox: Sandbox, warehouse_url: str
) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        first = run_all(sandbox, warehouse_url, instance)
        assert all(check.passed for check in balances(first).values())
        # one customer the build accepted (linked to a client) and one it sent to review, if the data has one
        accepted = accepted_ids(warehouse, "billing", "customers")
        in_review = [i for i in open_ids(warehouse, "billing", "customers") if i not in accepted]
        customers = [accepted[0], *in_review[:1]]
        contact = accepted_ids(warehouse, "crm", "contacts")[0]
        for customer in customers:
            deleted = stripe.api(sandbox, "DELETE", f"/v1/customers/{customer}")
            assert deleted.status_code == 200 and deleted.json()["deleted"] is True, deleted.text
        archived = hubspot_api(sandbox, "DELETE", f"/crm/v3/objects/contacts/{contact}")
        assert archived.status_code == 204, archived.text

        second = run_all(sandbox, warehouse_url, instance)

    raw_deleted = {str(r[0]) for r in warehouse.query("SELECT id FROM raw.billing_customers WHERE is_deleted")} | {
        str(r[0]) for r in warehouse.query("SELECT id FROM raw.crm_contacts WHERE is_deleted")
    }
    assert {*customers, contact} <= raw_deleted  # marked at the source, kept in the raw tables
    checks = balances(second)
    assert set(checks) == {f"canonical/{e}" for e in ENTITIES}
    for key, check in checks.items():
        assert check.passed, (key, check.metadata["summary"].value)
        for name in ("summary", "next_action", "records", "sample_ids"):
            assert name in check.metadata, (key, name)
    customers_check = checks["canonical/customers"].metadata
    assert customers_check["billing_customers_deleted"].value >= len(customers)
    assert customers_check["crm_contacts_deleted"].value >= 1
    assert "deleted" in customers_check["summary"].value
    # each deleted record is accepted as deleted: mapped, never in open review
    for system, object_type, ids in (("billing", "customers", customers), ("crm", "contacts", [contact])):
        mapped = set(accepted_ids(warehouse, system, object_type))
        assert set(ids) <= mapped, (object_type, set(ids) - mapped)
        assert not set(ids) & set(open_ids(warehouse, system, object_type))
    # the check judges the warehouse alone, as it would run from the UI
    for entity in ENTITIES:
        again = accounting_balances(entity, warehouse)
        assert again.passed, (entity, again.metadata["summary"].value)
    # a deleted record the build no longer carries is what a deletion means: accounted as deleted, not lost
    with warehouse.transaction() as tx:
        tx.execute(
            f"DELETE FROM {RECORD_MAP} WHERE system = 'billing' AND object_type = 'customers' AND record_id = ?",
            [customers[0]],
        )
    dropped = accounting_balances("customers", warehouse)
    assert dropped.passed, dropped.metadata["summary"].value
    assert dropped.metadata["billing_customers_deleted_dropped"].value == 1


def test_a_deleted_record_merged_into_a_row_sent_to_review_stays_accepted_as_deleted() -> None:
    """A live row that breaks the canonical contract goes to review; the deleted record merged into it cannot
    (nobody can fix it at the source), so it stays accepted, as deleted and placed in no row, never lost."""
    company, customer = ("crm", "companies"), ("billing", "customers")
    raw = {
        company: {"10000001": {"payload": {"id": "10000001"}, "is_deleted": False}},
        customer: {"cus_gone": {"payload": {"id": "cus_gone"}, "is_deleted": True}},
    }
    reader = _Reader(load_dictionary(), raw, Decisions(), OWN["customers"], None)
    built = Built()
    built.tables["customers"] = pd.DataFrame(
        [
            {
                "customer_id": "crm:10000001",
                "billing_customer_id": None,
                "support_organization_id": None,
                "plan": "no-such-plan",  # breaks the contract: the row goes to review
                "lifetime_value": None,
                "is_deleted": False,
                "source_records": "crm/companies/10000001, billing/customers/cus_gone",
            }
        ]
    )
    built.accepted = {
        company: {"10000001": ("canonical.customers", "crm:10000001", "own")},
        customer: {"cus_gone": ("canonical.customers", "crm:10000001", "stripe_company_link")},
    }
    _enforce(reader, built, "customers")
    assert built.tables["customers"].empty
    assert {key[:3] for key in reader.items} == {("crm", "companies", "10000001")}
    assert company not in built.accepted or "10000001" not in built.accepted[company]
    assert built.accepted[customer] == {"cus_gone": ("canonical.customers", None, "deleted")}


def _rows(warehouse: Warehouse, table: str, key: str) -> dict[str, dict]:
    frame = warehouse.frame(f"SELECT * FROM {table}")
    return {str(row[key]): row for row in frame.astype(object).where(frame.notna(), None).to_dict("records")}


def _accounts(warehouse: Warehouse) -> dict[tuple, tuple]:
    columns = "system, object_type, record_id, table_name, canonical_id, matched_by"
    rows = warehouse.query(f"SELECT {columns} FROM {RECORD_MAP}")
    return {tuple(map(str, r[:3])): tuple(r[3:]) for r in rows}


def _open_items(warehouse: Warehouse) -> list[tuple]:
    columns = "system, object_type, record_id, reason_code, detail"
    return sorted(warehouse.query(f"SELECT {columns} FROM {REVIEW} WHERE status = 'open'"))


def test_a_zendesk_organization_deleted_between_syncs_is_marked_deleted_and_unlinked_from_its_client(
    sandbox: Sandbox, warehouse_url: str
) -> None:
    """Zendesk's export reports a deleted organization with `deleted_at`: the incremental sync marks its raw row
    deleted, and the client that held it keeps the record (accepted as deleted) but no longer links to it."""
    put_faults(sandbox, "zendesk:\n  incremental_lag_s: 0\n")  # the export shows changes at once
    warehouse = Warehouse.from_url(warehouse_url)
    organizations = [a for a in checked_sources("complete_against_vendor") if a.key == ORGANIZATIONS]
    customers = [a for a in assets if a.key == AssetKey(["canonical", "customers"])]
    with DagsterInstance.ephemeral() as instance:
        run_all(sandbox, warehouse_url, instance)
        customer_id, linked = warehouse.query(
            "SELECT customer_id, support_organization_id FROM canonical.customers "
            "WHERE NOT is_deleted AND support_organization_id IS NOT NULL ORDER BY customer_id LIMIT 1"
        )[0]
        organization = linked.removeprefix("support:")
        raw_before = warehouse.raw_records(RAW_ORGANIZATIONS)
        customers_before = _rows(warehouse, "canonical.customers", "customer_id")
        contacts_before = _rows(warehouse, "canonical.contacts", "person_id")
        accounts_before, items_before = _accounts(warehouse), _open_items(warehouse)

        deleted = zendesk_api(sandbox, "DELETE", f"/api/v2/organizations/{organization}.json")
        assert deleted.status_code == 204, deleted.text

        synced = materialize(organizations, resources=resources(sandbox, warehouse_url), instance=instance)
        built = materialize(customers, resources=resources(sandbox, warehouse_url), instance=instance)
    assert synced.success and built.success
    sync = materialized(synced)["support/organizations"]
    assert sync["mode"].value == "incremental" and sync["deleted"].value == 1
    complete = {c.check_name: c for c in synced.get_asset_check_evaluations()}["complete_against_vendor"]
    assert complete.passed, complete.metadata["summary"].value  # Zendesk's count and the live rows agree

    # raw: that row alone is marked deleted, with the export's deletion time
    raw_after = warehouse.raw_records(RAW_ORGANIZATIONS)
    gone = raw_after.pop(organization)
    assert gone["is_deleted"] is True and gone["payload"]["deleted_at"] == gone["payload"]["updated_at"]
    assert gone["version"] > raw_before.pop(organization)["version"]
    assert raw_after == raw_before

    # canonical: the client stays live and still accounts for the organization, but no longer links to it
    checks = {c.check_name: c for c in built.get_asset_check_evaluations()}
    assert checks["accounting_balances"].passed, checks["accounting_balances"].metadata["summary"].value
    assert checks["accounting_balances"].metadata["support_organizations_deleted"].value >= 1
    assert checks["contract"].passed
    customers_after = _rows(warehouse, "canonical.customers", "customer_id")
    client, before = customers_after.pop(customer_id), customers_before.pop(customer_id)
    assert client["is_deleted"] is False and client["support_organization_id"] is None
    assert f"support/organizations/{organization}" in client["source_records"].split(", ")
    changed = {name for name in client if client[name] != before[name]}
    assert changed == {"support_organization_id", "support_updated_at"}, changed
    assert client["support_updated_at"] > before["support_updated_at"], "last changed when it was deleted"
    assert customers_after == customers_before
    assert _rows(warehouse, "canonical.contacts", "person_id") == contacts_before
    accounts_after = _accounts(warehouse)
    assert accounts_after[("support", "organizations", organization)] == (
        "canonical.customers",
        customer_id,
        accounts_before[("support", "organizations", organization)][2],
    )
    assert accounts_after == accounts_before
    assert _open_items(warehouse) == items_before
    again = accounting_balances("customers", warehouse)
    assert again.passed, again.metadata["summary"].value
