"""Zendesk Support: the system of record for tickets and the people who open them.

Its streams, declared once for the catalog (`integration_assets.systems.CATALOG`)."""

from dagster import EnvVar

from integration_assets.core.catalog import SystemSpec
from integration_assets.core.resources import redis_url_setting
from integration_assets.systems.support import contracts, links, routes, streams, totals
from integration_assets.systems.support.resource import ZendeskResource

__all__ = ["SYSTEM"]


def resource_from_env() -> ZendeskResource:
    """The connection the Definitions use: settings read through EnvVar, so no secret reaches the UI."""
    return ZendeskResource(
        base_url=EnvVar("ZENDESK_BASE_URL"),
        email=EnvVar("ZENDESK_EMAIL"),
        api_token=EnvVar("ZENDESK_API_TOKEN"),
        rate_budget_redis_url=redis_url_setting(),
    )


SYSTEM = SystemSpec.declare(
    "support",
    "zendesk",
    "Zendesk",
    readers=streams.STREAMS,
    contracts=contracts,
    descriptions={
        "organizations": "Zendesk organizations, linked to CRM companies through external_id.",
        "users": "Zendesk users: customers' people (end-users, linked to CRM contacts) and agents.",
        "tickets": "Zendesk tickets with status, priority, requester and organization.",
    },
    live_total=totals.live_total,
    resource=resource_from_env,
    record_page=links.record_page,
    routes=routes.ROUTES,
)
