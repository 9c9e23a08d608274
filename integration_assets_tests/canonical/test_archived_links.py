"""Drill: a company archived at HubSpot no longer links its deals in canonical, and links them again restored.

HubSpot stops showing a deal's association to an archived company without changing the deal's `updatedAt`, so
no incremental sync reads the deal again: raw.crm_deals keeps the link as HubSpot last showed it. The canonical
build checks what each deal links to against the companies' and contacts' deletion marks
(`canonical/build/links.py`), so the deal is not linked to the archived company, and is linked to it again once
the company is restored. Against the sandbox over HTTP, synced and built as users run them, on DuckDB and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import requests
from dagster import DagsterInstance, materialize

from integration_assets.canonical.assets import assets
from integration_assets.canonical.review import TABLE as REVIEW
from integration_assets.core.warehouse import Warehouse
from integration_assets_tests.testing.hubspot import api as hubspot_api
from integration_assets_tests.testing.sandbox import sandbox_records
from integration_assets_tests.testing.sync import SOURCES, materialized, resources
from integration_sandbox.server import Sandbox

STREAMS = ("crm/companies", "crm/contacts", "crm/deals", "billing/invoices")  # what canonical/deals reads
CANONICAL_DEALS = next(a for a in assets if "canonical/deals" in {k.to_user_string() for k in a.keys})


def sources(*keys: str) -> list:
    return [a for a in SOURCES if {k.to_user_string() for k in a.keys} & set(keys)]


def run(sandbox: Sandbox, url: str, instance: DagsterInstance, streams=STREAMS):
    """The streams' sync, then canonical/deals with its checks, as one materialization."""
    result = materialize([*sources(*streams), CANONICAL_DEALS], resources=resources(sandbox, url), instance=instance)
    assert result.success
    return result


def balanced(result) -> bool:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "accounting_balances"]
    return check.passed


def companies_of(payload: dict) -> list[str]:
    return [str(link["id"]) for link in ((payload.get("associations") or {}).get("companies") or {}).get("results", [])]


def raw_deals(warehouse: Warehouse) -> dict[str, dict]:
    return warehouse.raw_records("raw.crm_deals")


def canonical_deals(warehouse: Warehouse) -> pd.DataFrame:
    """canonical.deals by deal_id (`crm:<HubSpot id>`)."""
    frame = warehouse.frame("SELECT * FROM canonical.deals ORDER BY deal_id")
    return frame.set_index("deal_id")


def a_company_with_deals(warehouse: Warehouse) -> tuple[str, list[str]]:
    """A live company with live deals in canonical.deals (linked to it alone), and every live deal naming it."""
    deals = canonical_deals(warehouse)
    raw = raw_deals(warehouse)
    live = {str(r[0]) for r in warehouse.query("SELECT id FROM raw.crm_companies WHERE NOT is_deleted")}
    linked = deals[~deals["is_deleted"] & deals["customer_id"].notna()]["customer_id"].str.removeprefix("crm:")
    company = sorted(c for c in set(linked) if c in live)[0]
    naming = sorted(
        rid for rid, row in raw.items() if not row["is_deleted"] and company in companies_of(row["payload"])
    )
    return company, naming


def archive(sandbox: Sandbox, company: str) -> None:
    """Archives the company over HTTP as a HubSpot user deleting it does (its deals are left as they are)."""
    before = {r["id"]: r["updatedAt"] for r in sandbox_records(sandbox, "hubspot", "deals")}
    response = hubspot_api(sandbox, "DELETE", f"/crm/v3/objects/companies/{company}")
    assert response.status_code == 204, response.text
    after = {r["id"]: r["updatedAt"] for r in sandbox_records(sandbox, "hubspot", "deals")}
    assert after == before  # HubSpot's behaviour: the deals' updatedAt does not move


def assert_unlinked(warehouse: Warehouse, company: str, naming: list[str], before: pd.DataFrame, why: str) -> None:
    """No canonical deal links to the company's client; those left with no company are in review (`why` in the
    item's detail); every other deal's row is as it was."""
    after = canonical_deals(warehouse)
    assert not (after["customer_id"] == f"crm:{company}").any()
    alone = [f"crm:{d}" for d in naming if f"crm:{d}" in before.index]
    alone = [d for d in alone if before.loc[d, "customer_id"] == f"crm:{company}"]
    assert alone, "the chosen company links no canonical deal"
    items = warehouse.query(
        f"SELECT record_id, detail FROM {REVIEW} WHERE found_by = 'canonical/deals' AND system = 'crm' "
        "AND object_type = 'deals' AND reason_code = 'missing_required_field' AND status = 'open'",
    )
    found = {f"crm:{rid}": str(detail) for rid, detail in items}
    for deal in alone:
        assert deal not in after.index  # in review: a live deal with no live company, as the dictionary says
        assert found[deal].startswith("customer_id") and why in found[deal], found.get(deal)
    others = sorted(set(before.index) - set(alone))
    pd.testing.assert_frame_equal(after.loc[others], before.loc[others])


def restore(sandbox: Sandbox, company: str) -> None:
    """Brings the company back from HubSpot's recycle bin (the sandbox's inspection route stands in for the UI):
    live again, stamped now, so the next search by last change finds it."""
    (record,) = [r for r in sandbox_records(sandbox, "hubspot", "companies") if r["id"] == company]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record = {k: v for k, v in record.items() if k != "archivedAt"}
    record |= {"archived": False, "updatedAt": stamp}
    record["properties"] = {**record["properties"], "hs_lastmodifieddate": stamp}
    response = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/records/companies", json=[record], timeout=10)
    assert response.status_code == 200, response.text


def shown_companies(sandbox: Sandbox, deal: str) -> list[str]:
    """The companies HubSpot shows the deal associated with now, read over HTTP as the connector reads them."""
    response = hubspot_api(sandbox, "GET", f"/crm/v3/objects/deals/{deal}", params={"associations": "companies"})
    assert response.status_code == 200, response.text
    return companies_of(response.json())


def test_an_archived_company_is_unlinked_in_canonical_and_linked_again_when_restored(
    sandbox: Sandbox, warehouse_url: str
) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        first = run(sandbox, warehouse_url, instance)
        assert balanced(first)
        company, naming = a_company_with_deals(warehouse)
        stored = raw_deals(warehouse)
        before = canonical_deals(warehouse)

        archive(sandbox, company)
        assert not any(company in shown_companies(sandbox, deal) for deal in naming)  # HubSpot hides the link
        second = run(sandbox, warehouse_url, instance)
        report = materialized(second)

        # the connector stays incremental and the raw deals are what HubSpot last sent: they still name the company
        deals = report["crm/deals"]
        assert deals["mode"].value == "incremental" and deals["fetched"].value < len(stored)
        assert deals["inserted"].value == deals["updated"].value == 0
        raw = raw_deals(warehouse)
        assert all(company in companies_of(raw[deal]["payload"]) for deal in naming)
        assert raw == stored  # same versions, same payloads
        # canonical reads the company's deletion mark and builds only the deals naming it again
        assert report["canonical/deals"]["built"].value == "only what changed"
        assert report["canonical/deals"]["records_built"].value == len(naming)
        assert_unlinked(warehouse, company, naming, before, f"(crm:{company}) are archived or deleted at the source")
        assert balanced(second)

        restore(sandbox, company)
        assert all(company in shown_companies(sandbox, deal) for deal in naming)  # HubSpot shows the link again
        third = run(sandbox, warehouse_url, instance)
        report = materialized(third)

    assert report["crm/deals"]["mode"].value == "incremental"
    assert raw_deals(warehouse) == stored
    assert report["canonical/deals"]["built"].value == "only what changed"
    assert report["canonical/deals"]["records_built"].value == len(naming)
    pd.testing.assert_frame_equal(canonical_deals(warehouse), before)
    reopened = warehouse.query(
        f"SELECT count(*) FROM {REVIEW} WHERE found_by = 'canonical/deals' AND status = 'open' AND detail LIKE ?",
        [f"%(crm:{company})%"],
    )
    assert reopened == [(0,)]
    assert balanced(third)
