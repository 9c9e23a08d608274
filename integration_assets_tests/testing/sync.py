"""What the sync drills share: the vendor resources the Definitions build, pointed at a sandbox instead (with
fast retries), and raw tables compared with the sandbox's records."""

from __future__ import annotations

from dagster import AssetsDefinition

from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.definitions import source_assets
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets_tests.testing.sandbox import sandbox_records
from integration_sandbox.server import Sandbox

SOURCES = source_assets()  # the streams alone, without their checks
ALL_STREAMS = CATALOG.streams
VENDOR_OF = {system.role: system.vendor for system in CATALOG.systems}
DRILL = {"backoff_base_s": 0.01, "backoff_cap_s": 0.1, "max_attempts": 12, "read_timeout_s": 0.6}


def sandbox_env(sandbox: Sandbox, warehouse_url: str) -> dict[str, str]:
    """The environment a user sets to point the code location at the sandbox."""
    return {
        "HUBSPOT_BASE_URL": sandbox.url("hubspot"),
        "HUBSPOT_ACCESS_TOKEN": "pat-sandbox",
        "STRIPE_BASE_URL": sandbox.url("stripe"),
        "STRIPE_API_KEY": "sk_test_sandbox",
        "ZENDESK_BASE_URL": sandbox.url("zendesk"),
        "ZENDESK_EMAIL": "admin@sandbox.test",
        "ZENDESK_API_TOKEN": "zendesk-sandbox",
        "WAREHOUSE_URL": warehouse_url,
    }


def resources(
    sandbox: Sandbox,
    warehouse_url: str,
    *,
    hubspot: dict | None = None,
    stripe: dict | None = None,
    zendesk: dict | None = None,
    **overrides,
) -> dict:
    """The resources of the code location, pointed at the sandbox; per-vendor settings override."""
    settings = {**DRILL, **overrides}
    return {
        "hubspot": HubSpotResource(
            **{"base_url": sandbox.url("hubspot"), "access_token": "pat-sandbox", **settings, **(hubspot or {})}
        ),
        "stripe": StripeResource(
            **{
                "base_url": sandbox.url("stripe"),
                "api_key": "sk_test_sandbox",
                "requests_per_second": None,
                **settings,
                **(stripe or {}),
            }
        ),
        "zendesk": ZendeskResource(
            **{
                "base_url": sandbox.url("zendesk"),
                "email": "admin@sandbox.test",
                "api_token": "zendesk-sandbox",
                **settings,
                **(zendesk or {}),
            }
        ),
        "warehouse": WarehouseResource(url=warehouse_url),
    }


def _hubspot_view(stream, record: dict, archived: set[str]) -> dict:
    """What a HubSpot listing shows of a record: the requested properties, and links by id to live records
    (HubSpot stops showing a link once its other end is archived; the deal itself does not change)."""
    links = {
        to_type: sorted(
            {str(link["id"]) for link in (record.get("associations") or {}).get(to_type, {}).get("results", [])}
            - archived
        )
        for to_type in stream.reader.associations
    }
    return {
        "properties": {name: record["properties"].get(name) for name in stream.reader.properties},
        "archived": bool(record.get("archived")),
        "links": links,
    }


def _deleted(stream, record: dict) -> bool:
    if stream.role == "crm":
        return bool(record.get("archived"))
    if stream.role == "billing":
        return bool(record.get("deleted"))
    if stream.object_type == "organizations":
        return record.get("deleted_at") is not None
    return record.get("status") == "deleted" if stream.object_type == "tickets" else record.get("active") is False


def differences(sandbox: Sandbox, warehouse: Warehouse, streams=ALL_STREAMS) -> dict[str, list[str]]:
    """Per stream: records missing from the raw table, extra in it, or different from the sandbox's."""
    found: dict[str, list[str]] = {}
    archived = {
        str(r["id"])
        for object_type in ("companies", "contacts")
        for r in sandbox_records(sandbox, "hubspot", object_type)
        if r.get("archived")
    }
    for stream in streams:
        truth = {str(r["id"]): r for r in sandbox_records(sandbox, stream.vendor, stream.object_type)}
        warehouse.ensure_raw_table(stream.raw_table)  # a run killed early may not have made it yet
        landed = warehouse.raw_records(stream.raw_table)
        problems = [f"missing {i}" for i in truth.keys() - landed.keys()]
        problems += [f"extra {i}" for i in landed.keys() - truth.keys()]
        for record_id in truth.keys() & landed.keys():
            expected, row = truth[record_id], landed[record_id]
            if row["is_deleted"] != _deleted(stream, expected):
                problems.append(
                    f"{record_id}: is_deleted {row['is_deleted']} at the source {_deleted(stream, expected)}"
                )
            elif stream.role == "crm":
                if _hubspot_view(stream, row["payload"], archived) != _hubspot_view(stream, expected, archived):
                    problems.append(f"{record_id}: stale or different")
            elif not row["is_deleted"] and row["payload"] != expected:
                problems.append(f"{record_id}: stale or different")
        if problems:
            found[stream.key] = sorted(problems)[:10] + ([f"... {len(problems)} in all"] if len(problems) > 10 else [])
    return found


def checked_sources(*names: str) -> list[AssetsDefinition]:
    """The source assets with the stream checks called `names` (every one when none is named), each run in its
    stream's own step as in the code location."""
    from integration_assets.monitoring.definitions import stream_checks as monitoring_checks
    from integration_assets.reconciliation.definitions import stream_checks as reconciliation_checks

    checks = [*monitoring_checks(), *reconciliation_checks()]
    return source_assets(CATALOG, [check for check in checks if not names or check.name in names])


def materialized(result) -> dict[str, dict]:
    """Asset key → the metadata its materialization reported, from a Dagster execution result."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.to_user_string()] = materialization.metadata
    return found


__all__ = ["SOURCES", "checked_sources", "differences", "materialized", "resources", "sandbox_env"]
