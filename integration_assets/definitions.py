"""The one Definitions of the code location: gathers what each folder of the package exports."""

from dagster import Definitions, EnvVar

from integration_assets import writeback
from integration_assets.canonical.assets import asset_checks as canonical_checks
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.resources import WarehouseResource
from integration_assets.monitoring import health, quality
from integration_assets.monitoring.freshness import freshness_checks, freshness_sensor
from integration_assets.monitoring.sensors import sensors
from integration_assets.reconciliation.checks import asset_checks as reconciliation_checks
from integration_assets.schedules import SOURCES, jobs, schedules
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.support.resource import ZendeskResource

resources = {
    "hubspot": HubSpotResource(base_url=EnvVar("HUBSPOT_BASE_URL"), access_token=EnvVar("HUBSPOT_ACCESS_TOKEN")),
    "stripe": StripeResource(base_url=EnvVar("STRIPE_BASE_URL"), api_key=EnvVar("STRIPE_API_KEY")),
    "zendesk": ZendeskResource(
        base_url=EnvVar("ZENDESK_BASE_URL"),
        email=EnvVar("ZENDESK_EMAIL"),
        api_token=EnvVar("ZENDESK_API_TOKEN"),
    ),
    "warehouse": WarehouseResource(url=EnvVar("WAREHOUSE_URL")),
}

defs = Definitions(
    assets=[*SOURCES, *canonical_assets, *health.assets, *writeback.assets],
    asset_checks=[
        *canonical_checks,
        *quality.asset_checks,
        *reconciliation_checks,
        *health.asset_checks,
        *freshness_checks,
        *writeback.asset_checks,
    ],
    jobs=jobs,
    schedules=schedules,
    sensors=[*sensors, freshness_sensor, *writeback.sensors],
    resources=resources,
)
