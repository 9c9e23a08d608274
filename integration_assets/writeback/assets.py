"""The write-back flows as Dagster assets (group `writeback`), each with an `outbox_drained` check.

Materializing `writeback/<flow>` performs the sync: the outbox first, then this run's plan; the metadata
reports counts by status (the UI plots them), the outbox's size and a table of per-record results. Each flow
follows the canonical tables it reads (`automation_condition("writeback")`): the `write_back_automation`
sensor runs it once they changed and are usable (built, their blocking contract passed). The check
fails while writes wait in the outbox (a destination is down), so the issue-5 check sensors alert once when
the outage starts and send one recovery notice after the replay; `writeback.sensors.outbox_replay` requests
the replay when the waiting writes are due.
"""

from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from integration_assets.core.evidence import check_result, markdown_table
from integration_assets.core.http import ApiClient
from integration_assets.core.owners import team_owners
from integration_assets.core.policies import STEP_RETRY, automation_condition
from integration_assets.core.queues import queue_tags
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG
from integration_assets.writeback import outbox
from integration_assets.writeback.config import FlowSettings, load_writeback
from integration_assets.writeback.flows.billing_to_crm import BillingToCrm
from integration_assets.writeback.flows.crm_to_billing import CrmToBilling
from integration_assets.writeback.flows.crm_to_support import CrmToSupport
from integration_assets.writeback.runner import Flow, FlowRun, run_flow

__all__ = ["FLOWS", "asset_checks", "assets", "flow_key"]

RESULT_ROWS = 100
ROLES = {system.vendor: system.role for system in CATALOG.systems}  # the destination's role
BuildFlow = Callable[[ApiClient, FieldDictionary, FlowSettings], Flow]


class WritebackRunConfig(Config):
    dry_run: bool | None = Field(
        None, description="read and decide, report what would change, write nothing; unset: writeback.yaml"
    )


def flow_key(flow: str) -> AssetKey:
    return AssetKey(["writeback", flow])


# flow → (vendor resource, what it reads, how it is built, what it does)
FLOWS: dict[str, tuple[str, list[AssetKey], BuildFlow, str]] = {
    "crm_to_billing": (
        "stripe",
        [AssetKey(["canonical", "deals"]), AssetKey(["canonical", "customers"]), AssetKey(["billing", "invoices"])],
        lambda client, dictionary, settings: CrmToBilling(client, dictionary, settings),
        "Closed-won deals with a resolved client become exactly one Stripe customer (created if missing, linked by "
        "metadata) and one invoice for the deal's amount and currency (finalized per writeback.yaml).",
    ),
    "billing_to_crm": (
        "hubspot",
        [AssetKey(["canonical", "deals"]), AssetKey(["canonical", "invoices"])],
        lambda client, dictionary, settings: BillingToCrm(client, dictionary),
        "Invoice status onto the HubSpot deal properties billing owns per the field dictionary; a CRM value newer "
        "than the billing event is kept (conflict).",
    ),
    "crm_to_support": (
        "zendesk",
        [AssetKey(["canonical", "customers"])],
        lambda client, dictionary, settings: CrmToSupport(client, dictionary),
        "Plan and lifetime value onto the Zendesk organization with safe_update; an organization changed after "
        "its CRM company is not overwritten (conflict); a 409 means re-read and decide again.",
    ),
}


def _results_table(run: FlowRun) -> str:
    records = [
        {
            "record": o.write.record_id,
            "object": o.write.object_type,
            "operation": o.write.operation,
            "status": str(o.status) + (" (outbox)" if o.replayed else ""),
            "destination": o.destination_id or "",
            "detail": (o.detail or "")[:200],
            "next_action": o.next_action,
        }
        for o in run.outcomes
    ]
    columns = ("record", "object", "operation", "status", "destination", "detail", "next_action")
    return markdown_table(records, columns, RESULT_ROWS)


def _flush_calls(warehouse: Warehouse, client: ApiClient) -> None:
    calls = client.call_log.drain()
    if calls:
        with warehouse.transaction() as tx:
            tx.append("ops.api_calls", [call.as_row() for call in calls])


def _build_flow_asset(flow: str) -> AssetsDefinition:
    vendor, deps, build, description = FLOWS[flow]

    @asset(
        key=flow_key(flow),
        deps=deps,
        group_name="writeback",
        kinds={vendor, "python"},
        owners=team_owners(ROLES[vendor]),  # the team of the system it writes into
        pool=vendor,
        op_tags=queue_tags(vendor),  # its Celery queue, under the production profile
        retry_policy=STEP_RETRY,  # safe: every write carries its idempotency key and looks before it creates
        automation_condition=automation_condition("writeback"),
        required_resource_keys={vendor, "warehouse"},
        tags={"system": ROLES[vendor], "vendor": vendor},
        description=f"{description}\n\nEach write is in `ops.sync_log`; writes waiting for their destination are in "
        "`ops.outbox`; refusals and conflicts are in `ops.review_queue` (found_by `writeback/" + flow + "`).",
    )
    def flow_asset(context: AssetExecutionContext, config: WritebackRunConfig) -> MaterializeResult:
        settings_file = load_writeback()
        settings = settings_file.flow(flow)
        dry_run = settings.dry_run if config.dry_run is None else config.dry_run
        warehouse: Warehouse = context.resources.warehouse.open()
        client = getattr(context.resources, vendor).client(connector=settings.connector, run_id=context.run.run_id)
        try:
            with warehouse.held():  # one connection for the flow's transactions (one per write): on DuckDB,
                run = run_flow(  # opening the file for each cost more than the write into the vendor
                    build(client, load_dictionary(), settings),
                    warehouse,
                    settings,
                    settings_file,
                    run_id=context.run.run_id,
                    dry_run=dry_run,
                )
        finally:
            _flush_calls(warehouse, client)
            client.close()
        counts = run.counts()
        context.log.info(f"{flow}{' (dry run)' if dry_run else ''}: {counts}; {run.pending_after} in the outbox")
        return MaterializeResult(
            metadata={
                **counts,
                "writes": len(run.outcomes),
                "replayed": sum(1 for o in run.outcomes if o.replayed),
                "outbox_pending": run.pending_after,
                "circuit_open": run.circuit_opened,
                "dry_run": dry_run,
                "behaviour": MetadataValue.text(str(settings.behaviour)),
                "results": MetadataValue.md(_results_table(run)),
            }
        )

    return flow_asset


def _build_outbox_check(flow: str):
    vendor, *_ = FLOWS[flow]

    @asset_check(
        asset=flow_key(flow),
        name="outbox_drained",
        blocking=False,
        required_resource_keys={"warehouse"},
        description="No write of this flow waits in ops.outbox: fails while its destination is down (the writes "
        "wait with their idempotency keys), passes once the replay has delivered them.",
    )
    def outbox_drained(context: AssetCheckExecutionContext) -> AssetCheckResult:
        warehouse: Warehouse = context.resources.warehouse.open()
        outbox.ensure_table(warehouse)
        waiting = outbox.pending(warehouse, flow)
        system = ROLES[FLOWS[flow][0]]  # the destination's
        records = [
            {
                "id": item.write.record_id,
                "object_type": item.write.object_type,
                "operation": item.write.operation,
                "attempts": item.attempts,
                "idempotency_key": item.write.idempotency_key,
            }
            for item in waiting
        ]
        return check_result(
            passed=not waiting,
            system=system,
            summary=f"{len(waiting)} writes wait in the outbox for {system}"
            if waiting
            else f"nothing waits in the outbox for {system}",
            next_action=f"check {vendor}'s status; the outbox_replay sensor delivers the writes once it answers "
            "(each exactly once, with its idempotency key)",
            records=records,
            columns=("id", "object_type", "operation", "attempts", "idempotency_key"),
            counts={"outbox_pending": len(waiting)},
            severity=AssetCheckSeverity.ERROR,
        )

    return outbox_drained


assets = [_build_flow_asset(flow) for flow in FLOWS]
asset_checks = [_build_outbox_check(flow) for flow in FLOWS]
