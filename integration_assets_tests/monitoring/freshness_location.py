"""A tiny code location for the freshness drill: one asset with a short freshness policy, and the project's
freshness alert sensor ticking often.

The policy is the shortest Dagster allows (warn after 1 minute, fail after 2), so the drill sees WARN and then
FAIL within minutes; the sensor is the project's own (`freshness_alert_sensor`), writing to the DuckDB
warehouse named by FRESHNESS_DRILL_WAREHOUSE and the sinks of INTEGRATION_CONFIG_DIR's monitoring.yaml.
"""

import os
from datetime import timedelta

from dagster import Definitions, FreshnessPolicy, asset, define_asset_job

from integration_assets.core.resources import WarehouseResource
from integration_assets.monitoring.sensors import freshness_alert_sensor

WARN_MINUTES = 1
FAIL_MINUTES = 2


@asset(
    key=["crm", "fresh_probe"],
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=FAIL_MINUTES), warn_window=timedelta(minutes=WARN_MINUTES)
    ),
)
def fresh_probe() -> int:
    return 1


defs = Definitions(
    assets=[fresh_probe],
    jobs=[define_asset_job("refresh", [fresh_probe])],
    sensors=[freshness_alert_sensor(minimum_interval_seconds=3)],
    resources={"warehouse": WarehouseResource(url=os.environ.get("FRESHNESS_DRILL_WAREHOUSE", "warehouse.duckdb"))},
)
