"""What the executor's fork server imports once, so that each step it forks starts warm.

Dagster imports much of itself lazily: a step that opens the instance, plans its execution and writes its
events would import them again in every step process. Materializing a throwaway asset into a temporary
instance here imports them once, before the first fork.
"""

import contextlib
import importlib.util
import logging
import tempfile

from dagster import DagsterInstance, asset, materialize

import integration_assets.definitions  # noqa: F401  the code location itself

if importlib.util.find_spec("dagster_postgres"):  # the production instance's storage
    import dagster_postgres  # noqa: F401


@asset
def _warm_up() -> None:
    """Executed once, into a temporary instance; never part of the code location."""


logging.disable(logging.INFO)  # the throwaway run is not the user's: keep it out of the run's output
try:
    with (
        contextlib.suppress(Exception),
        tempfile.TemporaryDirectory() as _home,
        DagsterInstance.local_temp(tempdir=_home, overrides={"telemetry": {"enabled": False}}) as _instance,
    ):
        materialize([_warm_up], instance=_instance)
finally:
    logging.disable(logging.NOTSET)
