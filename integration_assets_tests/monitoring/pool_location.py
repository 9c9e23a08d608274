"""A tiny code location for the pool drills: assets in the vendor pool `stripe` that only hold it.

`hold_stripe` writes where it runs (`<run id>.pid` in POOL_DRILL_DIR: its own pid and its parent's, the run
worker under the multiprocess executor) and sleeps, so a drill can SIGKILL the run while it holds the pool's one
slot. `quick_stripe` needs the same slot for a moment. Nothing here imports the project: the drills exercise
Dagster's run monitoring and the pool sensor, not the vendors.
"""

import os
import time
from pathlib import Path

from dagster import AssetExecutionContext, Definitions, asset, define_asset_job

POOL = "stripe"
HOLD_SECONDS = 300.0  # longer than any drill: the drill kills the run, or its teardown does


@asset(pool=POOL)
def hold_stripe(context: AssetExecutionContext) -> None:
    marker = Path(os.environ["POOL_DRILL_DIR"]) / f"{context.run_id}.pid"
    marker.write_text(f"{os.getpid()} {os.getppid()}")
    time.sleep(HOLD_SECONDS)


@asset(pool=POOL)
def quick_stripe() -> int:
    return 1


defs = Definitions(
    assets=[hold_stripe, quick_stripe],
    jobs=[define_asset_job("hold", [hold_stripe]), define_asset_job("quick", [quick_stripe])],
)
