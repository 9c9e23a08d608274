"""The systems slice: one source asset per catalog stream, and the connections they call with."""

from __future__ import annotations

from dagster import AssetsDefinition, Definitions, EnvVar

from integration_assets.core.catalog import Catalog
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.source_asset import build_source_asset
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "source_assets"]


def source_assets(catalog: Catalog = CATALOG) -> list[AssetsDefinition]:
    return [build_source_asset(stream) for stream in catalog.streams]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    """Source assets and every resource of the code location: the vendors' connections and the warehouse."""
    resources = {system.vendor: system.resource() for system in catalog.systems}
    return Definitions(
        assets=source_assets(catalog),
        resources={**resources, "warehouse": WarehouseResource(url=EnvVar("WAREHOUSE_URL"))},
    )
