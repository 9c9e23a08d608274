"""Jobs and schedules (being built)."""

from dagster import AssetSelection, define_asset_job

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.systems.billing.assets import assets as billing_assets
from integration_assets.systems.crm.assets import assets as crm_assets
from integration_assets.systems.support.assets import assets as support_assets

SOURCES = [*crm_assets, *billing_assets, *support_assets]

integration_sync = define_asset_job(
    "integration_sync",
    selection=AssetSelection.assets(*SOURCES, *canonical_assets),
    description="Every source stream into the warehouse (incremental), then the canonical model and review queue.",
)

jobs = [integration_sync]
schedules: list = []
