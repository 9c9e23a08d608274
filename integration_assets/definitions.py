"""The one Definitions of the code location: gathers what each folder of the package exports."""

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job

from integration_assets.canonical.assets import asset_checks as canonical_checks
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.resources import WarehouseResource
from integration_assets.systems.billing.assets import assets as billing_assets
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.assets import assets as crm_assets
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.support.assets import assets as support_assets
from integration_assets.systems.support.resource import ZendeskResource

SOURCES = [*crm_assets, *billing_assets, *support_assets]

integration_sync = define_asset_job(
    "integration_sync",
    selection=AssetSelection.assets(*SOURCES, *canonical_assets),
    description="Every source stream into the warehouse (incremental), then the canonical model and review queue.",
)

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
    assets=[*SOURCES, *canonical_assets],
    asset_checks=canonical_checks,
    jobs=[integration_sync],
    resources=resources,
)
