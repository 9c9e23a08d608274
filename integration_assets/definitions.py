"""The one Definitions of the code location: the slices' own Definitions, merged.

Each slice (systems, canonical, reconciliation, monitoring, write-back) builds its assets, checks, jobs,
schedules and sensors from the stream catalog; `build_definitions` takes another catalog for tests.
"""

from dagster import Definitions

from integration_assets.canonical import definitions as canonical
from integration_assets.core.catalog import Catalog
from integration_assets.monitoring import definitions as monitoring
from integration_assets.reconciliation import definitions as reconciliation
from integration_assets.systems import CATALOG
from integration_assets.systems import definitions as systems
from integration_assets.writeback import definitions as writeback

__all__ = ["build_definitions", "defs"]


def build_definitions(catalog: Catalog = CATALOG) -> Definitions:
    return Definitions.merge(
        *(slice_.build_defs(catalog) for slice_ in (systems, canonical, reconciliation, monitoring, writeback))
    )


defs = build_definitions()
