"""One factory for every source asset: a vendor stream synced into its raw table, reported as metadata."""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.errors import IntegrationError
from integration_assets.core.policies import STEP_RETRY, freshness_policy
from integration_assets.core.sync import SyncReport, sync_stream
from integration_assets.core.warehouse import Warehouse


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


def build_source_asset(stream: StreamSpec) -> AssetsDefinition:
    table, vendor = stream.raw_table, stream.vendor

    @asset(
        key=stream.asset_key,
        group_name=stream.role,
        kinds={vendor, "python"},
        pool=vendor,
        retry_policy=STEP_RETRY,
        required_resource_keys={vendor, "warehouse"},
        description=f"{stream.description}\n\nLanded as the vendor sent it in `{table}`, incrementally.",
        tags={"system": stream.role, "vendor": vendor},
        freshness_policy=freshness_policy("source"),
    )
    def source(context: AssetExecutionContext, config: SyncConfig) -> MaterializeResult:
        connection = getattr(context.resources, vendor)
        client = connection.client(connector=stream.connector, run_id=context.run.run_id)
        warehouse = context.resources.warehouse.open()
        try:
            report = sync_stream(
                stream,
                client,
                warehouse,
                run_id=context.run.run_id,
                full_refresh=config.full_refresh,
                chunk_records=config.chunk_records,
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
