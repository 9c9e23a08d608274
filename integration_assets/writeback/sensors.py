"""`outbox_replay`: when writes wait in `ops.outbox` and are due again, request a run of their flow's asset,
which replays them first (in order per record, each with its idempotency key). Due times back off per failed
delivery (writeback.yaml `outbox`), so a destination still down is probed, not hammered."""

from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from integration_assets.core.dagster_adapter import owners_in_beta
from integration_assets.core.owners import team_owners
from integration_assets.core.resources import WarehouseResource
from integration_assets.writeback import outbox
from integration_assets.writeback.assets import FLOWS, flow_key

__all__ = ["outbox_replay", "sensors"]


def _due(due_at: object, now: datetime) -> bool:
    if due_at is None:
        return True
    moment = pd.Timestamp(due_at)
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment
    return moment.to_pydatetime() <= now


def _replay_due_writes(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    opened = warehouse.open()
    outbox.ensure_table(opened)
    now = datetime.now(UTC)
    waiting = outbox.pending_counts(opened)
    requests = [
        RunRequest(
            run_key=f"outbox:{flow}:{state['attempts']}:{state['due_at']}",
            asset_selection=[flow_key(flow)],
            tags={"integration/flow": "write_back", "writeback/replay": flow},
        )
        for flow, state in sorted(waiting.items())
        if flow in FLOWS and _due(state["due_at"], now)
    ]
    if not requests:
        total = sum(state["pending"] for state in waiting.values())
        return SkipReason(f"{total} writes wait, none due yet" if total else "the outbox is empty")
    return SensorResult(run_requests=requests)


with owners_in_beta():
    outbox_replay = sensor(
        name="outbox_replay",
        description="Replays writes waiting in ops.outbox once they are due: requests a run of their flow's asset.",
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        asset_selection=AssetSelection.assets(*(flow_key(flow) for flow in FLOWS)),
        owners=team_owners(),  # its flows write into every system
    )(_replay_due_writes)

sensors = [outbox_replay]
