"""The systems slice: one source asset per catalog stream, and the connections they call with.

The stream checks come from the slices that own them (monitoring, reconciliation); the code location hands
them in, so each runs in its stream's own step.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, Definitions, EnvVar

from integration_assets.core.catalog import Catalog
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.source_asset import build_source_asset
from integration_assets.core.stream_check import StreamCheck
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "source_assets"]


def source_assets(catalog: Catalog = CATALOG, checks: Sequence[StreamCheck] = ()) -> list[AssetsDefinition]:
    return [
        build_source_asset(stream, system.live_total, checks) for system in catalog.systems for stream in system.streams
    ]


def build_defs(catalog: Catalog = CATALOG, checks: Sequence[StreamCheck] = ()) -> Definitions:
    """Source assets and every resource of the code location: the vendors' connections and the warehouse."""
    resources = {system.vendor: system.resource() for system in catalog.systems}
    return Definitions(
        assets=source_assets(catalog, checks),
        resources={**resources, "warehouse": WarehouseResource(url=EnvVar("WAREHOUSE_URL"))},
    )
