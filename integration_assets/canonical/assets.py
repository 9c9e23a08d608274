"""The canonical assets: each rebuilds its `canonical.*` table(s), its rows in `canonical.record_map` and its
review items in one transaction, and an `accounting_balances` check proves that nothing vanished.

Each entity is one step with its checks (`contract`, blocking, and `accounting_balances`): they judge the
tables the step just wrote. A build whose inputs (raw tables, field dictionary, review decisions, settings)
are those of the last build changes nothing, so it is not redone: the asset reports `rebuilt: false` with
the same data version; its checks judge the tables again, so its newest materialization carries their verdicts.
Either check can run alone from the UI.

`canonical.record_map` (asset, system, object_type, record_id, table_name, canonical_id, matched_by) says where
each accepted raw record went; with `ops.review_queue` it lets the check recount every stream from the
warehouse alone: records in = accepted + in review, and no record both.
"""

import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import Field

from integration_assets.canonical import review
from integration_assets.canonical.build import OWN, build_entity, streams_of, table_columns
from integration_assets.canonical.columns import canonical_schema, customer_360_schema, review_queue_schema
from integration_assets.canonical.contract_check import contract_description, evaluate_contract
from integration_assets.core.columns import storage_kind, table_metadata
from integration_assets.core.config import config_path
from integration_assets.core.evidence import as_check, check_result, first_named, schema
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.owners import team_owners
from integration_assets.core.policies import (
    automation_condition,
    freshness_metadata,
    freshness_policy,
    freshness_sentence,
)
from integration_assets.core.quarantine import QUARANTINE_REASONS
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.systems import CATALOG

__all__ = ["INPUTS_VERSION", "accounting_balances", "assets"]

RECORD_MAP = "canonical.record_map"
RECORD_MAP_COLUMNS = {
    "asset": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",
    "table_name": "TEXT NOT NULL",
    "canonical_id": "TEXT",
    "matched_by": "TEXT",
}


INPUTS_VERSION = "inputs_version"  # metadata of each build: what it was built from (`_inputs_version`)


class CanonicalConfig(Config):
    default_region: str | None = Field(None, description="region for phone numbers without +country (e.g. GB)")
    rebuild: bool = Field(False, description="rebuild even when no input changed since the last build")


def _load_raw(warehouse: Warehouse, entity: str) -> dict:
    raw = {}
    for stream in streams_of(entity):
        table = CATALOG.stream_of(*stream).raw_table
        warehouse.ensure_raw_table(table)
        raw[stream] = {
            rid: {"payload": row["payload"], "is_deleted": bool(row["is_deleted"])}
            for rid, row in warehouse.raw_records(table).items()
        }
    return raw


def _key(entity: str) -> str:
    return f"canonical/{entity}"


def _inputs_version(warehouse: Warehouse, entity: str, config: CanonicalConfig) -> str:
    """What a build of `entity` depends on: its raw tables' versions, the field dictionary, the review
    decisions and the run's settings. Equal to the last build's, the build would change nothing."""
    parts = []
    for table in (CATALOG.stream_of(*stream).raw_table for stream in streams_of(entity)):
        warehouse.ensure_raw_table(table)
        parts.append(f"{table}={warehouse.raw_version(table)}")
    for name in ("field_dictionary.yaml", "review_decisions.yaml"):
        path = config_path(name)
        parts.append(f"{name}={hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else '-'}")
    parts.append(f"default_region={config.default_region}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _last_built_from(context: AssetExecutionContext, key: AssetKey) -> str | None:
    event = context.instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    entry = materialization.metadata.get(INPUTS_VERSION) if materialization else None
    return getattr(entry, "value", None)


def _build(context: AssetExecutionContext, entity: str, warehouse: Warehouse, config: CanonicalConfig) -> dict:
    """Rebuilds the entity's tables, record map and review items in one transaction; returns the metadata."""
    review.ensure_table(warehouse)
    decisions = review.load_decisions()
    dictionary = load_dictionary()
    built = build_entity(
        entity, dictionary, _load_raw(warehouse, entity), decisions, default_region=config.default_region
    )
    mapped = [
        {
            "asset": _key(entity),
            "system": s[0],
            "object_type": s[1],
            "record_id": rid,
            "table_name": table,
            "canonical_id": cid,
            "matched_by": how,
        }
        for s, records in built.accepted.items()
        for rid, (table, cid, how) in records.items()
    ]
    warehouse.ensure_table(RECORD_MAP, RECORD_MAP_COLUMNS)
    with warehouse.transaction() as tx:
        for table, frame in built.tables.items():
            tx.replace_table(f"canonical.{table}", table_columns(dictionary, table), frame)
        tx.execute(f"DELETE FROM {RECORD_MAP} WHERE asset = ?", [_key(entity)])
        if mapped:
            tx.append(RECORD_MAP, mapped)
        summary = review.sync_items(
            tx, built.items, found_by=_key(entity), run_id=context.run.run_id, decisions=decisions
        )
    main = built.tables[entity]
    deleted = int(main["is_deleted"].sum()) if len(main) else 0
    metadata: dict[str, Any] = {
        "dagster/row_count": len(main) - deleted,  # what the asset is: rows whose records are live at a source
        "deleted_rows": deleted,  # rows kept with is_deleted = true (deleted or archived at every source)
        "review_opened": summary.opened,
        "review_still_open": summary.still_open,
        "review_resolved": summary.resolved,
        "review_ignored": summary.ignored,
    }
    for table, frame in built.tables.items():
        if table != entity:  # `canonical.contacts` of customers: counted like the entity's own table
            other_deleted = int(frame["is_deleted"].sum()) if len(frame) else 0
            metadata[f"{table}_row_count"] = len(frame) - other_deleted
            metadata[f"{table}_deleted_rows"] = other_deleted
    for stream in OWN[entity]:
        name = CATALOG.stream_of(*stream).key.replace("/", "_")
        metadata[f"{name}_records_in"] = built.records_in[stream]
        metadata[f"{name}_accepted"] = len(built.accepted.get(stream, {}))
        metadata[f"{name}_in_review"] = len(built.review_ids(stream))
        failed = built.contracts.get(stream)
        metadata[f"{name}_contract_failures"] = len(failed.failed) if failed else 0
    for reason, count in sorted(Counter(i.reason_code for i in built.items).items()):
        metadata[f"review_{reason}"] = count
    return metadata


def accounting_balances(entity: str, warehouse: Warehouse) -> AssetCheckResult:
    """Records in = accepted + in review + deleted and not built, and no record both, per stream the entity owns.

    A record deleted at the source is accounted for by the raw table's own mark (`is_deleted`): the build
    accepts it as deleted (its row kept with `is_deleted`, or mapped to no row when nothing live is left to
    place it), and one the build no longer carries is what a deletion means, not a loss. Nobody can fix a
    record the vendor no longer shows, so a deletion must never fail the balance nor page anyone.

    A record that breaks the balance is listed by its vendor id (with its vendor link), so a person can open it:
    unaccounted (live, read but neither accepted nor in review: the build lost it), in both, or unknown
    (accepted or in review, yet no longer in the raw table)."""
    review.ensure_table(warehouse)
    warehouse.ensure_table(RECORD_MAP, RECORD_MAP_COLUMNS)
    counts: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    records_in = accepted_total = in_review_total = deleted_total = dropped_total = 0
    for stream in OWN[entity]:
        source = CATALOG.stream_of(*stream)
        name = source.key.replace("/", "_")
        warehouse.ensure_raw_table(source.raw_table)
        raw = warehouse.query(f"SELECT id, is_deleted FROM {source.raw_table}")
        raw_ids = {str(r[0]) for r in raw}
        gone = {str(r[0]) for r in raw if r[1]}  # deleted or archived at the source
        accepted = {
            str(r[0])
            for r in warehouse.query(
                f"SELECT record_id FROM {RECORD_MAP} WHERE asset = ? AND system = ? AND object_type = ?",
                [_key(entity), *stream],
            )
        }
        in_review = {
            str(r[0])
            for r in warehouse.query(
                f"SELECT record_id FROM {review.TABLE} WHERE found_by = ? AND system = ? AND object_type = ? "
                "AND status IN ('open', 'ignored')",
                [_key(entity), *stream],
            )
        }
        dropped = gone - accepted - in_review  # deleted at the source and no longer built: accounted as deleted
        both, lost = accepted & in_review, raw_ids - accepted - in_review - dropped
        extra = (accepted | in_review) - raw_ids
        counts.update(
            {
                f"{name}_records_in": len(raw_ids),
                f"{name}_accepted": len(accepted),
                f"{name}_in_review": len(in_review),
                f"{name}_deleted": len(gone),  # accepted as deleted, in review, or dropped
                f"{name}_accepted_deleted": len(accepted & gone),
                f"{name}_deleted_dropped": len(dropped),
                f"{name}_unaccounted": len(lost),
                f"{name}_accepted_and_in_review": len(both),
                f"{name}_unknown": len(extra),
            }
        )
        records_in, accepted_total, in_review_total = (
            records_in + len(raw_ids),
            accepted_total + len(accepted),
            in_review_total + len(in_review),
        )
        deleted_total, dropped_total = deleted_total + len(gone), dropped_total + len(dropped)
        for problem, ids, where in (
            ("unaccounted", lost, "in the raw table, live; neither accepted nor in review"),
            ("accepted_and_in_review", both, "accepted and in the review queue"),
            ("unknown", extra, "accepted or in review; not in the raw table"),
        ):
            rows += [
                {
                    "system": stream[0],
                    "object_type": stream[1],
                    "id": rid,
                    "link": CATALOG.record_page(*stream, rid),
                    "problem": problem,
                    "found": where,
                    "raw_table": source.raw_table,
                }
                for rid in sorted(ids)
            ]
    kinds = {kind: sum(1 for r in rows if r["problem"] == kind) for kind in ("unaccounted", "accepted_and_in_review")}
    named = first_named([f"{r['system']}/{r['object_type']}/{r['id']}" for r in rows])
    return check_result(
        passed=not rows,
        system="canonical",
        summary=f"canonical/{entity}: {records_in} raw records, each accepted ({accepted_total}), in review "
        f"({in_review_total}) or deleted at the source and no longer built ({dropped_total}), none both; "
        f"{deleted_total} of them deleted at the source."
        if not rows
        else f"canonical/{entity}: {len(rows)} raw records break the balance ({kinds['unaccounted']} unaccounted, "
        f"{kinds['accepted_and_in_review']} accepted and in review, {len(rows) - sum(kinds.values())} unknown); "
        f"records {named}.",
        next_action=f"Rebuild canonical/{entity} (config `rebuild: true`); if the listed records stay unbalanced, "
        "its build drops or double-books them: read the run log and the record map of those ids.",
        records=rows,
        columns=schema(
            ("system", "string", "The system of the raw record (its role)."),
            ("object_type", "string", "The vendor's object type."),
            ("id", "string", "The vendor's id of the record."),
            ("link", "url", "The record's page at the vendor; empty against the local sandbox."),
            ("problem", "string", "unaccounted, accepted_and_in_review or unknown."),
            ("found", "string", "Where the record was found."),
            ("raw_table", "string", "The raw table the stream lands in."),
        ),
        counts=counts,
        limit=load_monitoring().reconciliation.sample_rows,
        severity=AssetCheckSeverity.ERROR,
    )


def _build_canonical(entity: str, description: str) -> AssetsDefinition:
    key = AssetKey(["canonical", entity])

    @multi_asset(
        name=f"canonical__{entity}",
        specs=[
            AssetSpec(
                key,
                deps=[CATALOG.stream_of(*s).asset_key for s in streams_of(entity)],
                group_name="canonical",
                kinds={"python", "pandera", storage_kind()},
                owners=team_owners(),
                freshness_policy=freshness_policy("canonical"),
                automation_condition=automation_condition("canonical"),
                skippable=True,  # a check executed alone runs this step without a build
                description=f"{description}\n\nOne row per record in `canonical.{entity}`; its columns are the "
                "fields of `field_dictionary.yaml`, each naming the raw fields it is read from"
                + (" (those of `canonical.contacts` are in `contacts_columns`)" if entity == "customers" else "")
                + ". `dagster/row_count` counts the rows live at a source; `deleted_rows` those kept with "
                f"`is_deleted`. {freshness_sentence('canonical')}",
                metadata={
                    **table_metadata(f"canonical.{entity}", canonical_schema(entity)),
                    **({"contacts_columns": canonical_schema("contacts")} if entity == "customers" else {}),
                    **freshness_metadata("canonical"),
                },
            )
        ],
        check_specs=[
            AssetCheckSpec("contract", asset=key, blocking=True, description=contract_description(entity)),
            AssetCheckSpec(
                "accounting_balances",
                asset=key,
                description="Every raw record the asset reads ends accepted (canonical.record_map) or in the review "
                "queue, never both, never neither, and nothing is accepted or in review that the raw tables do not "
                "hold. Lists each record that breaks the balance, by its vendor id.",
            ),
        ],
        can_subset=True,
        required_resource_keys={"warehouse"},
    )
    def canonical_asset(
        context: AssetExecutionContext, config: CanonicalConfig
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        warehouse: Warehouse = context.resources.warehouse.open()
        with warehouse.held():  # one connection for the step: opening DuckDB costs more than most queries
            if key in context.selected_asset_keys:
                inputs = _inputs_version(warehouse, entity, config)
                if (
                    config.rebuild
                    or inputs != _last_built_from(context, key)
                    or not warehouse.has_table(f"canonical.{entity}")
                ):
                    metadata = {**_build(context, entity, warehouse, config), INPUTS_VERSION: inputs, "rebuilt": True}
                else:
                    context.log.info(f"{_key(entity)}: no input changed since its last build ({inputs}); not rebuilt")
                    metadata = {INPUTS_VERSION: inputs, "rebuilt": False}
                yield MaterializeResult(metadata=metadata, data_version=DataVersion(inputs))
            # judged again even when nothing was rebuilt: the newest materialization carries its verdicts, which
            # the automation reads before anything downstream acts on the table (a blocking `contract` above all)
            for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.name):
                judge = evaluate_contract if check_key.name == "contract" else accounting_balances
                yield as_check(judge(entity, warehouse), check_key)

    return canonical_asset


_DESCRIPTIONS = {
    "customers": "Clients (HubSpot companies) with their Stripe payer and Zendesk organization linked by identity "
    "rules; also rebuilds `canonical.contacts` (CRM contacts and Zendesk users).",
    "deals": "Deals from HubSpot, with the status of their Stripe invoice.",
    "invoices": "Stripe invoices, each linked to its client through its payer.",
    "payments": "Stripe charges, each linked to its client through its payer.",
    "tickets": "Zendesk tickets with requester (a canonical person) and client.",
}
_BUILT = {entity: _build_canonical(entity, text) for entity, text in _DESCRIPTIONS.items()}

CUSTOMER_360_COLUMNS = {
    "customer_id": "TEXT NOT NULL",
    "name": "TEXT",
    "owner": "TEXT",
    "plan": "TEXT",
    "currencies": "TEXT",
    "revenue_paid": "JSON",
    "open_receivables": "JSON",
    "open_tickets": "INTEGER",
    "won_deals": "INTEGER",
    "is_deleted": "BOOLEAN",
}


@asset(
    key=AssetKey(["canonical", "customer_360"]),
    deps=[AssetKey(["canonical", e]) for e in ("customers", "deals", "invoices", "payments", "tickets")],
    group_name="canonical",
    kinds={"python", storage_kind()},
    owners=team_owners(),
    required_resource_keys={"warehouse"},
    freshness_policy=freshness_policy("canonical"),
    automation_condition=automation_condition("canonical"),
    metadata={
        **table_metadata("canonical.customer_360", customer_360_schema(CUSTOMER_360_COLUMNS)),
        **freshness_metadata("canonical"),
    },
    description="One row per client for dashboards.\n\nMoney is kept per currency, never added across currencies: "
    "`revenue_paid` and `open_receivables` are JSON objects currency → integer minor units (e.g. "
    '`{"EUR": 1250000}` is EUR 12,500.00). revenue_paid = succeeded payments less refunds; open_receivables = '
    "amount_remaining of open invoices; open_tickets = tickets open or waiting; owner = the Zendesk account owner. "
    f"`dagster/row_count` counts live clients; `deleted_rows` the deleted ones. {freshness_sentence('canonical')}",
)
def customer_360(context: AssetExecutionContext) -> MaterializeResult:
    warehouse: Warehouse = context.resources.warehouse.open()
    customers = warehouse.frame("SELECT customer_id, name, account_owner, plan, is_deleted FROM canonical.customers")
    payments = warehouse.frame(
        "SELECT customer_id, currency, amount - coalesce(amount_refunded, 0) AS net FROM canonical.payments "
        "WHERE status = 'succeeded' AND NOT is_deleted AND customer_id IS NOT NULL"
    )
    invoices = warehouse.frame(
        "SELECT customer_id, currency, amount_remaining FROM canonical.invoices "
        "WHERE status = 'open' AND NOT is_deleted AND customer_id IS NOT NULL"
    )
    tickets = warehouse.frame(
        "SELECT customer_id, count(*) AS n FROM canonical.tickets WHERE status IN ('open', 'waiting') "
        "AND NOT is_deleted AND customer_id IS NOT NULL GROUP BY customer_id"
    )
    deals = warehouse.frame(
        "SELECT customer_id, count(*) AS n FROM canonical.deals WHERE stage = 'won' AND NOT is_deleted "
        "GROUP BY customer_id"
    )

    def per_currency(frame: pd.DataFrame, column: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for row in frame.itertuples(index=False):
            money = out.setdefault(row.customer_id, {})
            money[row.currency] = money.get(row.currency, 0) + int(getattr(row, column))
        return out

    revenue, receivables = per_currency(payments, "net"), per_currency(invoices, "amount_remaining")
    open_tickets = dict(zip(tickets["customer_id"], tickets["n"], strict=True))
    won = dict(zip(deals["customer_id"], deals["n"], strict=True))
    rows = []
    for row in customers.itertuples(index=False):
        paid, due = revenue.get(row.customer_id, {}), receivables.get(row.customer_id, {})
        rows.append(
            {
                "customer_id": row.customer_id,
                "name": row.name,
                "owner": row.account_owner,
                "plan": row.plan,
                "currencies": ",".join(sorted(set(paid) | set(due))),
                "revenue_paid": paid,
                "open_receivables": due,
                "open_tickets": int(open_tickets.get(row.customer_id, 0)),
                "won_deals": int(won.get(row.customer_id, 0)),
                "is_deleted": bool(row.is_deleted),
            }
        )
    frame = pd.DataFrame(rows, columns=list(CUSTOMER_360_COLUMNS))
    with warehouse.transaction() as tx:
        tx.replace_table("canonical.customer_360", CUSTOMER_360_COLUMNS, frame)
    deleted = int(frame["is_deleted"].sum()) if len(frame) else 0
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(frame) - deleted,
            "deleted_rows": deleted,
            "customers_with_open_tickets": int((frame["open_tickets"] > 0).sum()) if len(frame) else 0,
            "customers_with_receivables": int(sum(1 for r in rows if r["open_receivables"])),
        }
    )


@asset(
    key=AssetKey(["ops", "review_queue"]),
    deps=[AssetKey(["canonical", e]) for e in _DESCRIPTIONS],
    group_name="ops",
    kinds={"python", storage_kind()},
    owners=team_owners(),
    required_resource_keys={"warehouse"},
    automation_condition=automation_condition("canonical"),
    metadata=table_metadata(review.TABLE, review_queue_schema()),
    description="Every record that could not be accepted without a guess, waiting for a person's answer.\n\n"
    "The review queue (`ops.review_queue`): one row per (system, object type, record id, reason code), with "
    "detail, severity, next action, first and last seen, occurrences, status (open, resolved, ignored) and "
    "resolution. Answer items in `review_decisions.yaml`; they apply on the next run. This asset reports the "
    "queue; the canonical assets write it, and so do the source syncs for the records they cannot store at all "
    "(found_by the stream, e.g. `crm/contacts`; their escaped raw content is in `ops.quarantine`).",
)
def review_queue(context: AssetExecutionContext) -> MaterializeResult:
    warehouse: Warehouse = context.resources.warehouse.open()
    review.ensure_table(warehouse)
    frame = review.queue(warehouse)
    open_items = frame[frame["status"] == "open"]
    metadata: dict[str, Any] = {
        "dagster/row_count": len(frame),
        "open": len(open_items),
        "resolved": int((frame["status"] == "resolved").sum()),
        "ignored": int((frame["status"] == "ignored").sum()),
    }
    for reason, count in open_items["reason_code"].value_counts().sort_index().items():
        metadata[f"open_{reason}"] = int(count)
    # records the syncs could not store (not in any raw table): their reason is a quarantine one, found by a stream
    metadata["open_quarantined"] = int(open_items["reason_code"].isin(QUARANTINE_REASONS).sum())
    preview = open_items[["system", "object_type", "record_id", "reason_code", "next_action"]].head(50)
    lines = ["| " + " | ".join(preview.columns) + " |", "|" + "---|" * len(preview.columns)]
    lines += [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in preview.itertuples(index=False)
    ]
    metadata["open_items"] = MetadataValue.md("\n".join(lines) if len(preview) else "none")
    return MaterializeResult(metadata=metadata)


assets = [*_BUILT.values(), customer_360, review_queue]
