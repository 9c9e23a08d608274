"""One factory for every source asset: a vendor stream synced into its raw table, reported as metadata."""

from dataclasses import replace

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Backoff,
    Config,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field

from integration_assets.core.errors import IntegrationError
from integration_assets.core.sync import Stream, SyncReport, sync_stream, table_of
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.freshness import freshness_policy

# A run-level retry for what the client's own retries could not absorb (a vendor down for minutes).
STEP_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


class SyncConfig(Config):
    full_refresh: bool = Field(False, description="ignore the stored cursor and list everything again")
    chunk_records: int = Field(5_000, description="records per transaction: bounds memory and lost work")


def _column_schema(report: SyncReport) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(name, " | ".join(sorted(kinds - {"null"}) or ["null"]))
            for name, kinds in sorted(report.fields.items())
        ]
    )


def _live_rows(warehouse: Warehouse, table: str) -> int:
    """Rows not deleted at the source: what the volume check compares run to run (the UI plots it)."""
    return warehouse.query(f"SELECT count(*) FROM {table} WHERE NOT is_deleted")[0][0]


def build_source_asset(stream: Stream, *, vendor: str, description: str) -> AssetsDefinition:
    table = table_of(stream)

    @asset(
        key=AssetKey(stream.key.split("/")),
        group_name=stream.system,
        kinds={vendor, "python"},
        pool=vendor,
        retry_policy=STEP_RETRY,
        required_resource_keys={vendor, "warehouse"},
        description=f"{description}\n\nLanded as the vendor sent it in `{table}`, incrementally.",
        tags={"system": stream.system, "vendor": vendor},
        freshness_policy=freshness_policy("source"),
    )
    def source(context: AssetExecutionContext, config: SyncConfig) -> MaterializeResult:
        connection = getattr(context.resources, vendor)
        client = connection.client(connector=f"{stream.system}_source", run_id=context.run.run_id)
        warehouse = context.resources.warehouse.open()
        try:
            report = sync_stream(
                replace(stream, chunk_records=config.chunk_records),
                client,
                warehouse,
                run_id=context.run.run_id,
                full_refresh=config.full_refresh,
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
        return MaterializeResult(
            metadata={
                "dagster/row_count": warehouse.count(table),
                "live_rows": _live_rows(warehouse, table),
                "dagster/column_schema": _column_schema(report),
                "table": table,
                "mode": report.mode,
                "cursor": report.cursor or "",
                "fetched": report.fetched,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "stale_skipped": report.stale,
                "deleted": report.deleted,
                "pages": report.pages,
                "api_calls": calls["calls"],
                "failed_calls": calls["failed"],
                "retries": calls["retries"],
                "rate_limited_429s": calls["429s"],
                "latency_p50_ms": calls["latency_p50_ms"],
                "latency_p95_ms": calls["latency_p95_ms"],
                "seconds": report.seconds,
            }
        )

    return source
