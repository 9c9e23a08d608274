"""What the write-back drills share: a business synced into the warehouse, new won deals entered in HubSpot as
a salesperson would, the flows materialized, and the sandbox's records counted by their links."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml
from dagster import AssetSelection, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.config import default_path
from integration_assets.core.warehouse import Warehouse
from integration_assets.writeback.assets import asset_checks as writeback_checks
from integration_assets.writeback.assets import assets as writeback_assets
from integration_assets.writeback.assets import flow_key
from integration_assets_tests.testing.sandbox import sandbox_records
from integration_assets_tests.testing.sync import SOURCES, materialized, resources
from integration_sandbox.server import Sandbox

EVERYTHING = [*SOURCES, *canonical_assets, *writeback_assets, *writeback_checks]
HUBSPOT_HEADERS = {"Authorization": "Bearer pat-sandbox"}


def sync(sandbox: Sandbox, url: str, instance: DagsterInstance) -> None:
    """Sources, then the canonical model, as the integration_sync job does."""
    selection = AssetSelection.assets(*SOURCES, *canonical_assets)
    result = materialize(EVERYTHING, selection=selection, resources=resources(sandbox, url), instance=instance)
    assert result.success


def run_flows(
    sandbox: Sandbox, url: str, instance: DagsterInstance, *flows: str, dry_run: bool | None = None, **overrides
):
    """Materializes the flows' assets (and their outbox checks); returns the result and each flow's metadata."""
    config = {} if dry_run is None else {"dry_run": dry_run}
    result = materialize(
        EVERYTHING,
        selection=AssetSelection.assets(*(flow_key(f) for f in flows)),
        resources=resources(sandbox, url, **overrides),
        instance=instance,
        run_config={"ops": {f"writeback__{f}": {"config": config} for f in flows}},
    )
    assert result.success
    return result, {key.split("/", 1)[1]: meta for key, meta in materialized(result).items()}


def value(metadata: dict, name: str):
    return metadata[name].value


def _hubspot(sandbox: Sandbox, object_type: str, body: dict) -> dict:
    response = requests.post(
        f"{sandbox.url('hubspot')}/crm/v3/objects/{object_type}", json=body, headers=HUBSPOT_HEADERS, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()


def new_company(sandbox: Sandbox, name: str) -> str:
    slug = name.lower().replace(" ", "-")
    return _hubspot(sandbox, "companies", {"properties": {"name": name, "domain": f"{slug}.example"}})["id"]


def won_deal(sandbox: Sandbox, company_id: str, amount: str, currency: str = "USD", days_ago: int = 30) -> str:
    """A closed-won deal on a company, closed long enough ago that the reconciliation grace period has passed."""
    closed = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = {
        "properties": {
            "dealname": f"Drill deal {uuid.uuid4().hex[:6]}",
            "amount": amount,
            "deal_currency_code": currency,
            "dealstage": "closedwon",
            "pipeline": "default",
            "closedate": closed,
        },
        "associations": [
            {"to": {"id": company_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}
        ],
    }
    return _hubspot(sandbox, "deals", body)["id"]


def new_business(sandbox: Sandbox, companies: int, deals_each: int, prefix: str) -> dict[str, list[str]]:
    """New clients with won deals and nothing in billing yet: company id → its deal ids."""
    made = {}
    for n in range(companies):
        company = new_company(sandbox, f"{prefix} Client {n:02d} {uuid.uuid4().hex[:4]}")
        made[company] = [won_deal(sandbox, company, f"{1000 + 250 * n + 10 * d}.00") for d in range(deals_each)]
    return made


def invoices_per_deal(sandbox: Sandbox) -> Counter:
    return Counter(
        str((i.get("metadata") or {}).get("hubspot_deal_id"))
        for i in sandbox_records(sandbox, "stripe", "invoices")
        if (i.get("metadata") or {}).get("hubspot_deal_id")
    )


def customers_per_company(sandbox: Sandbox) -> Counter:
    return Counter(
        str((c.get("metadata") or {}).get("hubspot_company_id"))
        for c in sandbox_records(sandbox, "stripe", "customers")
        if not c.get("deleted") and (c.get("metadata") or {}).get("hubspot_company_id")
    )


def won_deal_ids(sandbox: Sandbox) -> set[str]:
    return {
        d["id"]
        for d in sandbox_records(sandbox, "hubspot", "deals")
        if d["properties"].get("dealstage") == "closedwon" and not d.get("archived")
    }


def table(url: str, sql: str, params: list | None = None) -> list[dict]:
    return Warehouse.from_url(url).frame(sql, params or []).to_dict("records")


def write_settings(path: Path, **outbox) -> Path:
    """The packaged writeback.yaml with other outbox timings (a drill cannot wait a minute for the replay)."""
    config = yaml.safe_load(default_path("writeback.yaml").read_text())
    config["outbox"].update(outbox)
    path.write_text(yaml.safe_dump(config))
    return path
