"""One factory for every source asset: a vendor stream synced into its raw table, with its checks in the same step.

Each stream is a `multi_asset` of one asset that can be subset: a run that materializes it evaluates its
selected checks right after the sync, from what the sync measured, in the same process; a check executed
alone (from the UI) runs in the same step without a sync.
"""

from collections.abc import Iterator, Sequence
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)
from pydantic import Field

from integration_assets.core.catalog import LiveTotal, StreamSpec
from integration_assets.core.columns import raw_schema, storage_kind, table_metadata
from integration_assets.core.errors import IntegrationError
from integration_assets.core.evidence import as_check
from integration_assets.core.owners import team_owners
from integration_assets.core.policies import (
    STEP_RETRY,
    automation_condition,
    freshness_metadata,
    freshness_policy,
    freshness_sentence,
)
from integration_assets.core.queues import queue_tags
from integration_assets.core.resources import VendorConnection
from integration_assets.core.stream_check import ChunkWatcher, Landed, StreamCheck, StreamCheckRun
from integration_assets.core.sync import SyncReport, sync_stream
from integration_assets.core.warehouse import Warehouse


class SyncConfig(Config):
    full_refresh: bool = Field(False, description="ignore the stored cursor and list everything again")
    chunk_records: int = Field(5_000, description="records per transaction: bounds memory and lost work")


PAYLOAD_SHAPE = "payload_shape"  # materialization metadata: the payload fields and JSON types a run fetched


def _payload_shape(report: SyncReport) -> TableSchema:
    """What this run observed of the vendor's payload (field -> JSON types), which the drift check judges. Not
    `dagster/column_schema`: the UI would prefer it over the declared schema, and a run that fetched nothing
    would show no columns at all."""
    return TableSchema(
        columns=[
            TableColumn(name, " | ".join(sorted(kinds - {"null"}) or ["null"]))
            for name, kinds in sorted(report.fields.items())
        ]
    )


def _row_counts(warehouse: Warehouse, table: str) -> tuple[int, int]:
    """(rows live at the source, rows deleted there): the first is what the volume check compares run to run."""
    live, deleted = warehouse.query(
        f"SELECT count(CASE WHEN NOT is_deleted THEN 1 END), count(CASE WHEN is_deleted THEN 1 END) FROM {table}"
    )[0]
    return int(live), int(deleted)


def build_source_asset(
    stream: StreamSpec, live_total: LiveTotal, checks: Sequence[StreamCheck] = ()
) -> AssetsDefinition:
    table, vendor = stream.raw_table, stream.vendor
    checks = [check for check in checks if check.applies(stream)]

    @multi_asset(
        name=stream.key.replace("/", "__"),
        specs=[
            AssetSpec(
                stream.asset_key,
                group_name=stream.role,
                kinds={vendor, storage_kind(), "python"},
                description=f"{stream.description}\n\nLanded as the vendor sent it in `{table}`, incrementally. "
                "`dagster/row_count` counts the records live at the vendor; `deleted_rows` those deleted, archived "
                f"or tombstoned there, kept with `is_deleted`. {freshness_sentence('source')}",
                metadata={**table_metadata(table, raw_schema(stream)), **freshness_metadata("source")},
                owners=team_owners(stream.role),
                tags={"system": stream.role, "vendor": vendor},
                freshness_policy=freshness_policy("source"),
                automation_condition=automation_condition("source"),
                skippable=True,  # a check executed alone runs this step without a sync
            )
        ],
        check_specs=[
            AssetCheckSpec(
                check.name, asset=stream.asset_key, blocking=check.blocking, description=check.description(stream)
            )
            for check in checks
        ],
        can_subset=True,
        pool=vendor,
        op_tags=queue_tags(vendor),  # its Celery queue, under the production profile
        retry_policy=STEP_RETRY,
        required_resource_keys={vendor, "warehouse"},
    )
    def source(context: AssetExecutionContext, config: SyncConfig) -> Iterator[MaterializeResult | AssetCheckResult]:
        connection = getattr(context.resources, vendor)
        warehouse = context.resources.warehouse.open()
        with warehouse.held():  # one connection for the step: opening DuckDB costs more than most queries
            selected = [
                c for c in checks if AssetCheckKey(stream.asset_key, c.name) in context.selected_asset_check_keys
            ]
            landed, watched = None, {}
            if stream.asset_key in context.selected_asset_keys:
                watchers = {check.name: check.watch(stream, warehouse) for check in selected}
                watchers = {name: pair for name, pair in watchers.items() if pair is not None}
                report, metadata = _sync(
                    context, stream, connection, warehouse, config, [w for w, _ in watchers.values()]
                )
                yield MaterializeResult(
                    metadata=metadata, data_version=DataVersion(warehouse.raw_version(stream.raw_table))
                )
                landed = Landed(report, metadata)
                watched = {name: gathered() for name, (_, gathered) in watchers.items()}
            for check in selected:
                run = StreamCheckRun(
                    stream=stream,
                    warehouse=warehouse,
                    instance=context.instance,
                    run_id=context.run.run_id,
                    client=lambda: connection.client(connector=stream.connector, run_id=context.run.run_id),
                    live_total=live_total,
                    landed=landed,
                    watched=watched.get(check.name),
                )
                skipped = check.skip_reason(run)
                if skipped is not None:  # not yielded: the UI shows the check as skipped in this run
                    context.log.info(f"{stream.key}: {check.name} not evaluated in this run: {skipped}")
                    continue
                yield as_check(check.evaluate(run), AssetCheckKey(stream.asset_key, check.name))

    return source


def _sync(
    context: AssetExecutionContext,
    stream: StreamSpec,
    connection: VendorConnection,
    warehouse: Warehouse,
    config: SyncConfig,
    watchers: list[ChunkWatcher],
) -> tuple[SyncReport, dict[str, Any]]:
    """Lands the stream; returns what it did and its materialization metadata."""
    client = connection.client(connector=stream.connector, run_id=context.run.run_id)
    try:
        report = sync_stream(
            stream,
            client,
            warehouse,
            run_id=context.run.run_id,
            full_refresh=config.full_refresh,
            chunk_records=config.chunk_records,
            on_chunk=watchers,
        )
    except IntegrationError as error:
        context.log.error(str(error))
        raise Failure(
            description=str(error),
            metadata={k: MetadataValue.text(str(v)) for k, v in error.as_record().items() if v not in (None, {})},
            allow_retries=error.retryable,
        ) from None
    finally:
        client.close()
    calls = client.call_log.summary()
    context.log.info(
        f"{stream.key}: {report.mode} sync, {report.fetched} fetched, {report.inserted} new, "
        f"{report.updated} updated, {report.deleted} deleted, {calls['calls']} calls ({calls['retries']} retries)"
    )
    if report.quarantined:  # a warning, not a failure: the rest landed; the contract check carries the verdict
        reasons = ", ".join(f"{count} {code}" for code, count in sorted(report.quarantine_reasons.items()))
        context.log.warning(
            f"{stream.key}: {report.quarantined} records not stored, quarantined for review ({reasons}); ids "
            f"{', '.join(report.quarantined_ids[:10])}. Their review items are in ops.review_queue (found_by "
            f"{stream.key}), their escaped raw content in ops.quarantine."
        )
    table = stream.raw_table
    live, deleted = _row_counts(warehouse, table)
    return report, {
        "dagster/row_count": live,  # what the asset is: the records live at the vendor
        "live_rows": live,  # the volume check's history reads this key (its older runs have no other)
        "deleted_rows": deleted,
        PAYLOAD_SHAPE: _payload_shape(report),
        "table": table,
        "mode": report.mode,
        "cursor": report.cursor or "",
        "fetched": report.fetched,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "stale_skipped": report.stale,
        "deleted": report.deleted,
        "quarantined": report.quarantined,  # not stored: in ops.review_queue and ops.quarantine instead
        "quarantine_resolved": report.resolved,
        "pages": report.pages,
        "api_calls": calls["calls"],
        "failed_calls": calls["failed"],
        "retries": calls["retries"],
        "rate_limited_429s": calls["429s"],
        "latency_p50_ms": calls["latency_p50_ms"],
        "latency_p95_ms": calls["latency_p95_ms"],
        "seconds": report.seconds,
    }
