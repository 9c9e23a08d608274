"""HubSpot CRM: the system of record for companies, contacts and deals.

Its streams, declared once for the catalog (`integration_assets.systems.CATALOG`)."""

from dagster import EnvVar

from integration_assets.core.catalog import SystemSpec
from integration_assets.core.resources import redis_url_setting
from integration_assets.systems.crm import contracts, links, routes, streams, totals
from integration_assets.systems.crm.resource import HubSpotResource

__all__ = ["SYSTEM"]


def resource_from_env() -> HubSpotResource:
    """The connection the Definitions use: settings read through EnvVar, so no secret reaches the UI."""
    return HubSpotResource(
        base_url=EnvVar("HUBSPOT_BASE_URL"),
        access_token=EnvVar("HUBSPOT_ACCESS_TOKEN"),
        rate_budget_redis_url=redis_url_setting(),
    )


SYSTEM = SystemSpec.declare(
    "crm",
    "hubspot",
    "HubSpot",
    readers=streams.STREAMS,
    contracts=contracts,
    descriptions={
        "companies": "HubSpot companies: the CRM's accounts, owner of names and domains.",
        "contacts": "HubSpot contacts: the people at each company, with emails and phones.",
        "deals": "HubSpot deals with their stage, amount, currency and associated company and contacts.",
    },
    live_total=totals.live_total,
    resource=resource_from_env,
    record_page=links.record_page,
    routes=routes.ROUTES,
)
