"""The one Definitions of the code location: the slices' own Definitions, merged.

Each slice (systems, canonical, reconciliation, monitoring, write-back) builds its assets, checks, jobs,
schedules and sensors from the stream catalog; the stream checks of monitoring and reconciliation are handed
to the source assets, so each runs in its stream's own step. `build_definitions` takes another catalog for
tests. Runs use the executor `INTEGRATION_EXECUTOR` names (`core/executor.py`). Every asset carries a code
reference to the file that defines it, so its page in the UI links to its source.
"""

import warnings

from dagster import BetaWarning, Definitions, with_source_code_references

from integration_assets.canonical import definitions as canonical
from integration_assets.core.automation import automation_sensor
from integration_assets.core.catalog import Catalog
from integration_assets.core.executor import executor_from_env
from integration_assets.monitoring import definitions as monitoring
from integration_assets.reconciliation import definitions as reconciliation
from integration_assets.systems import CATALOG
from integration_assets.systems import definitions as systems
from integration_assets.writeback import definitions as writeback

__all__ = ["build_definitions", "defs"]

SYNC_AUTOMATION = (
    "Syncs every source stream at the top of each hour, and builds each canonical asset once the data of a "
    "source it reads changed (in the same run at the top of the hour; after a source materialized by hand)."
)


# the beta features used knowingly, as their warnings name them; any other BetaWarning still shows
KNOWN_BETA = (
    r"(Function `with_source_code_references`|Class `(CodeReferencesMetadataValue|LocalFileCodeReference)`"
    r"|Parameter `owners` of) "
)


def build_definitions(catalog: Catalog = CATALOG) -> Definitions:
    # Code references and schedules' owners are Dagster beta features, used knowingly: without this, each load
    # prints one BetaWarning per asset (the UI's "Source code" link and the owners are what they are for).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", KNOWN_BETA, BetaWarning)
        return _build_definitions(catalog)


def _build_definitions(catalog: Catalog) -> Definitions:
    stream_checks = [*monitoring.stream_checks(), *reconciliation.stream_checks()]
    merged = Definitions.merge(
        systems.build_defs(catalog, stream_checks),
        *(slice_.build_defs(catalog) for slice_ in (canonical, reconciliation, monitoring, writeback)),
        Definitions(executor=executor_from_env()),
        Definitions(
            sensors=[automation_sensor("sync", canonical.sync_selection(catalog), SYNC_AUTOMATION, catalog.roles)]
        ),
    )
    return Definitions(
        assets=with_source_code_references(list(merged.assets or [])),
        asset_checks=merged.asset_checks,
        schedules=merged.schedules,
        sensors=merged.sensors,
        jobs=merged.jobs,
        resources=merged.resources,
        executor=merged.executor,
        loggers=merged.loggers,
        metadata=merged.metadata,
    )


defs = build_definitions()
