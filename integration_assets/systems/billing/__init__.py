"""Stripe: the system of record for billing customers, invoices and payments.

Its streams, declared once for the catalog (`integration_assets.systems.CATALOG`)."""

from dagster import EnvVar

from integration_assets.core.catalog import SystemSpec
from integration_assets.core.resources import redis_url_setting
from integration_assets.systems.billing import contracts, currencies, links, routes, streams, totals
from integration_assets.systems.billing.resource import StripeResource

__all__ = ["SYSTEM"]


def resource_from_env() -> StripeResource:
    """The connection the Definitions use: settings read through EnvVar, so no secret reaches the UI."""
    return StripeResource(
        base_url=EnvVar("STRIPE_BASE_URL"), api_key=EnvVar("STRIPE_API_KEY"), rate_budget_redis_url=redis_url_setting()
    )


SYSTEM = SystemSpec.declare(
    "billing",
    "stripe",
    "Stripe",
    readers=streams.STREAMS,
    contracts=contracts,
    descriptions={
        "customers": "Stripe customers: who pays, linked to CRM companies through metadata and email.",
        "invoices": "Stripe invoices with status, amounts in minor units and the CRM deal in metadata.",
        "charges": "Stripe charges: the money that arrived, and the invoice it pays.",
    },
    names={"charges": "payments"},
    live_total=totals.live_total,
    resource=resource_from_env,
    record_page=links.record_page,
    has_updated_at=False,
    routes=routes.ROUTES,
    minor_units=currencies.MINOR_UNITS,
)
