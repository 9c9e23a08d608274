"""The canonical assets: each builds its `canonical.*` table(s), its rows in `canonical.record_map` and its
review items in one transaction (only the groups of records that changed since its last build, `plan.py`), and
an `accounting_balances` check proves that nothing vanished.

Each entity is one step with its checks (`contract`, blocking, and `accounting_balances`): they judge the
tables the step just wrote. A build whose inputs (raw tables, field dictionary, review decisions, settings)
are those of the last build changes nothing, so it is not redone: the asset reports `rebuilt: false` with
the same data version; its checks judge the tables again, so its newest materialization carries their verdicts.
Either check can run alone from the UI. A build reads anew only the raw records loaded since the last one; the
others' reads are staged (`staged.py`); `records_read` and `records_reused` say how many of each, and
`rebuild: true` reads every record anew.

`canonical.record_map` (asset, system, object_type, record_id, table_name, canonical_id, matched_by) says where
each accepted raw record went; with `ops.review_queue` it lets the check recount every stream from the
warehouse alone: records in = accepted + in review, and no record both.
"""

import hashlib
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
from integration_assets.canonical.build import LOOKUPS, MARKS, OWN, Built, build_entity, streams_of, table_columns
from integration_assets.canonical.build.records import _column
from integration_assets.canonical.columns import canonical_schema, customer_360_schema, review_queue_schema
from integration_assets.canonical.contract_check import contract_description, evaluate_contract
from integration_assets.canonical.load import PhaseLoader, deleted_fingerprint
from integration_assets.canonical.plan import (
    Ref,
    build_basis,
    ensure_state,
    incremental_possible,
    plan_build,
    save_state,
)
from integration_assets.canonical.review import ref_texts
from integration_assets.canonical.staged import STAGED_READS, reads_basis
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
from integration_assets.core.warehouse import Transaction, Warehouse, validate_table
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.schema import FieldDictionary
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
INPUTS = "inputs"  # metadata of each build: the fingerprint of each input, to say what changed next time
BATCH_RECORDS = 100_000  # own records a build holds at once (whole groups), at most about


class CanonicalConfig(Config):
    default_region: str | None = Field(None, description="region for phone numbers without +country (e.g. GB)")
    rebuild: bool = Field(
        False,
        description="rebuild even when no input changed since the last build, reading every raw record anew "
        "(not only those loaded since the last build) and resolving identity anew (once per run)",
    )


def _key(entity: str) -> str:
    return f"canonical/{entity}"


def _inputs(warehouse: Warehouse, entity: str, config: CanonicalConfig) -> dict[str, str]:
    """What a build of `entity` depends on, each with a short fingerprint: its raw tables' versions (of those it
    reads only for their deletion marks, `MARKS`, the ids deleted at the source), the field
    dictionary, the review decisions and the run's settings. All equal to the last build's, it would change
    nothing; otherwise the ones that differ say why it is rebuilt."""
    parts: dict[str, str] = {}
    read = [*OWN[entity], *LOOKUPS[entity]]
    for table in (CATALOG.stream_of(*stream).raw_table for stream in read):
        warehouse.ensure_raw_table(table)
        parts[table] = _fingerprint(warehouse.raw_version(table))
    for stream in MARKS.get(entity, ()):  # read for their deletion marks alone: an edit of a live record is no input
        if stream not in read:
            marks = deleted_fingerprint(warehouse, stream)
            parts[f"{CATALOG.stream_of(*stream).raw_table} (deleted)"] = _fingerprint(marks)
    for name in ("field_dictionary.yaml", "review_decisions.yaml"):
        path = config_path(name)
        parts[name] = _fingerprint(path.read_bytes()) if path.exists() else "-"
    parts["default_region"] = str(config.default_region)
    return parts


def _fingerprint(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()[:12]


def _inputs_version(inputs: dict[str, str]) -> str:
    return _fingerprint("\n".join(f"{name}={value}" for name, value in inputs.items()))[:16]


def _last_build(context: AssetExecutionContext, key: AssetKey) -> tuple[str | None, dict[str, str]]:
    """The inputs version and fingerprints the last build of `key` recorded (none before the first)."""
    event = context.instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return None, {}
    version = getattr(materialization.metadata.get(INPUTS_VERSION), "value", None)
    inputs = getattr(materialization.metadata.get(INPUTS), "value", None)
    return version, dict(inputs) if isinstance(inputs, dict) else {}


def _why_rebuilt(config: CanonicalConfig, last_version: str | None, last: dict[str, str], now: dict[str, str]) -> str:
    """The reason a build runs, in words: what changed since the last one. A changed dictionary or decision
    builds everything (it touches every record, so nothing narrower would be right); changed raw tables build
    the groups their changed records touch (`plan.py`), reading anew only the records loaded since (`staged.py`)."""
    if config.rebuild:
        return "asked for (config rebuild: true)"
    if last_version is None:
        return "first build"
    if not last:
        return "inputs changed since the last build (it recorded no detail)"
    changed = [name for name, value in now.items() if last.get(name) != value]
    return "changed since the last build: " + ", ".join(changed) if changed else "its table is missing"


def _build(context: AssetExecutionContext, entity: str, warehouse: Warehouse, config: CanonicalConfig) -> dict:
    """Builds the entity's tables, record map and review items, and writes them in one transaction: only the
    groups of records whose inputs changed since the last build (`plan.py`), or everything when the last build
    was made under another basis (dictionary, decisions, region, code) or a rebuild is asked for. Returns the
    metadata."""
    review.ensure_table(warehouse)
    decisions_path = config_path("review_decisions.yaml")
    decisions = review.load_decisions()
    dictionary = load_dictionary()
    loader = PhaseLoader(
        warehouse, dictionary, default_region=config.default_region, restage=config.rebuild, identity=False
    )
    basis = build_basis(loader, decisions_path.read_text() if decisions_path.exists() else "")
    tables = ("customers", "contacts") if entity == "customers" else (entity,)
    complete = all(warehouse.has_table(f"canonical.{table}") for table in tables)
    ensure_state(warehouse)  # an earlier release's plan tables are replaced: it then builds everything
    incremental = complete and not config.rebuild and incremental_possible(warehouse, entity, basis)
    plan = plan_build(entity, loader, decisions, basis, incremental=incremental, run_id=context.run.run_id)
    frames: dict[str, list[pd.DataFrame]] = {table: [] for table in tables}
    mapped: dict[str, list[Any]] = {name: [] for name in RECORD_MAP_COLUMNS}  # column by column: one row per record
    items: list[review.ReviewItem] = []
    for scope in plan.batches(BATCH_RECORDS):  # a batch's records are let go before the next one's are loaded
        loader.only = scope
        built = build_entity(
            entity,
            dictionary,
            loader,
            decisions,
            default_region=config.default_region,
            matches=plan.matches,
            duplicates=plan.duplicates,
        )
        _collect(entity, built, frames, mapped, items)
        del built
    whole = {table: _joined(dictionary, table, frames.pop(table)) for table in tables}
    warehouse.ensure_table(RECORD_MAP, RECORD_MAP_COLUMNS)
    with warehouse.transaction() as tx:
        _write_tables(tx, entity, dictionary, whole, plan.affected)
        whole.clear()  # each output is let go once written: the peak of a large build is in this transaction
        tx.append_columns(RECORD_MAP, mapped)
        mapped.clear()
        summary = review.sync_items(
            tx, items, found_by=_key(entity), run_id=context.run.run_id, decisions=decisions, within=plan.affected
        )
        items.clear()
        save_state(tx, _key(entity), basis, plan)
    metadata: dict[str, Any] = {
        **_row_counts(warehouse, entity, tables),
        "review_opened": summary.opened,
        "review_still_open": summary.still_open,
        "review_resolved": summary.resolved,
        "review_ignored": summary.ignored,
    }
    metadata.update(_stream_counts(warehouse, entity, loader))
    # how many records were read anew (loaded since the last build, or all on a rebuild), and how many kept
    # the read staged when they were loaded before; how many were built again, and why
    metadata["records_read"] = sum(staged.read for staged in loader.staged.values())
    metadata["records_reused"] = sum(staged.reused for staged in loader.staged.values())
    metadata["records_built"] = len(plan.state)
    metadata["built"] = "only what changed" if plan.affected is not None else "everything"
    if plan.identity:  # whether identity was resolved again for this build (the costliest part of a small one)
        metadata["identity"] = MetadataValue.json(plan.identity)
    return metadata


def _key_column(dictionary: FieldDictionary, table: str) -> str:
    """The column naming a canonical row: what the record map's canonical_id holds for the table."""
    if table == "contacts":
        return "person_id"
    return _column(dictionary.entity(table).field(dictionary.entity(table).key[0]), table)


def _collect(
    entity: str,
    built: Built,
    frames: dict[str, list[pd.DataFrame]],
    mapped: dict[str, list[Any]],
    items: list[review.ReviewItem],
) -> None:
    """Adds one batch's output to the build's: its frames, its record map (column by column) and its items.
    A function of its own, so that no loop variable keeps the batch's last frame or records alive after it."""
    for table, frame in built.tables.items():
        frames[table].append(frame)
    for (system, object_type), records in built.accepted.items():
        for rid, (table, cid, how) in records.items():
            row = (_key(entity), system, object_type, rid, table, cid, how)
            for name, value in zip(mapped, row, strict=True):
                mapped[name].append(value)
    items += built.items


def _joined(dictionary: FieldDictionary, table: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from the batches' parts (which the caller lets go: a table is not held twice)."""
    filled = [part for part in parts if len(part)]
    if not filled:
        return pd.DataFrame(columns=list(table_columns(dictionary, table)))
    return pd.concat(filled, ignore_index=True)


def _write_tables(
    tx: Transaction,
    entity: str,
    dictionary: FieldDictionary,
    tables: dict[str, pd.DataFrame],
    affected: set[Ref] | None,
) -> None:
    """The build's canonical rows: every table replaced (a build of everything), or the affected records' rows."""
    if affected is not None:
        _replace_rows(tx, entity, dictionary, tables, ref_texts(affected))
        return
    for table, frame in tables.items():
        tx.replace_table(f"canonical.{table}", table_columns(dictionary, table), frame)
    tx.execute(f"DELETE FROM {RECORD_MAP} WHERE asset = ?", [_key(entity)])


def _replace_rows(
    tx: Transaction, entity: str, dictionary: FieldDictionary, tables: dict[str, pd.DataFrame], refs: list[str]
) -> None:
    """Replaces what the affected records (`refs`) made at the last build with what they make now: the rows
    they were mapped to, and their lines in the record map."""
    for table, frame in tables.items():
        columns = table_columns(dictionary, table)
        key = _key_column(dictionary, table)
        tx.execute(
            f'DELETE FROM canonical.{table} WHERE "{key}" IN (SELECT canonical_id FROM {RECORD_MAP} '
            f"WHERE asset = ? AND table_name = ? AND {review.REF_SQL} IN (SELECT unnest(?)))",
            [_key(entity), f"canonical.{table}", refs],
        )
        if len(frame):
            tx.execute(
                f'DELETE FROM canonical.{table} WHERE "{key}" IN (SELECT unnest(?))', [[str(k) for k in frame[key]]]
            )
        tx.insert_frame(f"canonical.{table}", columns, frame)
    tx.execute(
        f"DELETE FROM {RECORD_MAP} WHERE asset = ? AND {review.REF_SQL} IN (SELECT unnest(?))", [_key(entity), refs]
    )


def _row_counts(warehouse: Warehouse, entity: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows live at a source and rows kept as deleted, per table the build writes, counted in the warehouse."""
    counts: dict[str, int] = {}
    for table in tables:
        rows, deleted = warehouse.query(f"SELECT count(*), count(*) FILTER (WHERE is_deleted) FROM canonical.{table}")[
            0
        ]
        if table == entity:  # what the asset is: rows whose records are live at a source
            counts["dagster/row_count"], counts["deleted_rows"] = int(rows) - int(deleted), int(deleted)
        else:  # `canonical.contacts` of customers: counted like the entity's own table
            counts[f"{table}_row_count"], counts[f"{table}_deleted_rows"] = int(rows) - int(deleted), int(deleted)
    return counts


def _stream_counts(warehouse: Warehouse, entity: str, loader: PhaseLoader) -> dict[str, Any]:
    """Per own stream: records in, accepted, in review, and live records breaking the vendor contract; then
    the open review items by reason. Counted in the warehouse, so a build of some records says the whole."""
    metadata: dict[str, Any] = {}
    basis = reads_basis(loader.dictionary, loader.region)
    for stream in OWN[entity]:
        source = CATALOG.stream_of(*stream)
        name = source.key.replace("/", "_")
        raw = validate_table(source.raw_table)
        ((records_in, broken),) = warehouse.query(
            f"SELECT count(*), count(s.contract) FILTER (WHERE NOT r.is_deleted) FROM {raw} AS r "
            f"LEFT JOIN {STAGED_READS} AS s ON s.stream = ? AND s.record_id = r.id AND s.basis = ?",
            [source.key, basis],
        )
        ((accepted,),) = warehouse.query(
            f"SELECT count(*) FROM {RECORD_MAP} WHERE asset = ? AND system = ? AND object_type = ?",
            [_key(entity), *stream],
        )
        ((in_review,),) = warehouse.query(
            f"SELECT count(DISTINCT record_id) FROM {review.TABLE} WHERE found_by = ? AND system = ? "
            "AND object_type = ? AND status IN ('open', 'ignored')",
            [_key(entity), *stream],
        )
        metadata.update(
            {
                f"{name}_records_in": int(records_in),
                f"{name}_accepted": int(accepted),
                f"{name}_in_review": int(in_review),
                f"{name}_contract_failures": int(broken),
            }
        )
    reasons = warehouse.query(
        f"SELECT reason_code, count(*) FROM {review.TABLE} WHERE found_by = ? AND status IN ('open', 'ignored') "
        "GROUP BY reason_code ORDER BY reason_code",
        [_key(entity)],
    )
    metadata.update({f"review_{reason}": int(count) for reason, count in reasons})
    return metadata


_TALLIES = (  # per stream, in the check's metadata as `<stream>_<tally>`
    "records_in",
    "accepted",
    "in_review",
    "deleted",  # accepted as deleted, in review, or dropped
    "accepted_deleted",
    "deleted_dropped",
    "unaccounted",
    "accepted_and_in_review",
    "unknown",
)
_WHERE = {
    "unaccounted": "in the raw table, live; neither accepted nor in review",
    "accepted_and_in_review": "accepted and in the review queue",
    "unknown": "accepted or in review; not in the raw table",
}


def _balance(
    warehouse: Warehouse, raw_table: str, asset: str, stream: tuple[str, str]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """One stream's balance, counted in the warehouse (a full outer join of the raw ids, the record map and the
    review queue): the tallies, and (problem, id) of each record at fault, which are all that leave it."""
    joined = f"""
        WITH raw AS (SELECT CAST(id AS TEXT) AS id, is_deleted FROM {validate_table(raw_table)}),
        mapped AS (
            SELECT DISTINCT record_id AS id FROM {RECORD_MAP} WHERE asset = ? AND system = ? AND object_type = ?
        ),
        queued AS (
            SELECT DISTINCT record_id AS id FROM {review.TABLE}
            WHERE found_by = ? AND system = ? AND object_type = ? AND status IN ('open', 'ignored')
        ),
        joined AS (
            SELECT coalesce(raw.id, mapped.id, queued.id) AS id, raw.id IS NOT NULL AS in_raw,
                coalesce(raw.is_deleted, FALSE) AS gone, mapped.id IS NOT NULL AS accepted,
                queued.id IS NOT NULL AS in_review
            FROM raw FULL OUTER JOIN mapped ON mapped.id = raw.id
            FULL OUTER JOIN queued ON queued.id = coalesce(raw.id, mapped.id)
        ),
        judged AS (
            SELECT *, CASE
                WHEN accepted AND in_review THEN 'accepted_and_in_review'
                WHEN NOT in_raw THEN 'unknown'
                WHEN NOT gone AND NOT accepted AND NOT in_review THEN 'unaccounted'
            END AS problem FROM joined
        )"""
    params = [asset, *stream, asset, *stream]
    (tally,) = warehouse.query(
        f"""{joined}
        SELECT count(*) FILTER (WHERE in_raw), count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE in_review),
            count(*) FILTER (WHERE in_raw AND gone), count(*) FILTER (WHERE accepted AND gone),
            count(*) FILTER (WHERE gone AND NOT accepted AND NOT in_review),
            count(*) FILTER (WHERE problem = 'unaccounted'), count(*) FILTER (WHERE accepted AND in_review),
            count(*) FILTER (WHERE NOT in_raw)
        FROM judged""",
        params,
    )
    faults = warehouse.query(f"{joined} SELECT problem, id FROM judged WHERE problem IS NOT NULL", params)
    ordered = {"unaccounted": 0, "accepted_and_in_review": 1, "unknown": 2}  # ids in code point order, as listed
    faults.sort(key=lambda fault: (ordered[fault[0]], str(fault[1])))
    return dict(zip(_TALLIES, (int(v) for v in tally), strict=True)), [(str(p), str(i)) for p, i in faults]


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
        tally, faults = _balance(warehouse, source.raw_table, _key(entity), stream)
        counts.update({f"{name}_{kind}": tally[kind] for kind in _TALLIES})
        records_in, accepted_total, in_review_total = (
            records_in + tally["records_in"],
            accepted_total + tally["accepted"],
            in_review_total + tally["in_review"],
        )
        deleted_total, dropped_total = deleted_total + tally["deleted"], dropped_total + tally["deleted_dropped"]
        rows += [
            {
                "system": stream[0],
                "object_type": stream[1],
                "id": rid,
                "link": CATALOG.record_page(*stream, rid),
                "problem": problem,
                "found": _WHERE[problem],
                "raw_table": source.raw_table,
            }
            for problem, rid in faults
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
                parts = _inputs(warehouse, entity, config)
                inputs = _inputs_version(parts)
                last_version, last_parts = _last_build(context, key)
                recorded = {INPUTS_VERSION: inputs, INPUTS: MetadataValue.json(parts)}
                if config.rebuild or inputs != last_version or not warehouse.has_table(f"canonical.{entity}"):
                    why = _why_rebuilt(config, last_version, last_parts, parts)
                    built = _build(context, entity, warehouse, config)
                    context.log.info(
                        f"{_key(entity)}: rebuilt ({why}); {built['records_read']} raw records read anew, "
                        f"{built['records_reused']} read as staged at their last load"
                    )
                    metadata = {**built, **recorded, "rebuilt": True, "rebuilt_because": why}
                else:
                    context.log.info(f"{_key(entity)}: no input changed since its last build ({inputs}); not rebuilt")
                    metadata = {**recorded, "rebuilt": False}
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


# Per client: open tickets and won deals (counts), then money per currency (never added across currencies):
# revenue_paid = succeeded payments less refunds, open_receivables = amount_remaining of open invoices.
_CLIENTS = """
    WITH tickets AS (
        SELECT customer_id, count(*) AS n FROM canonical.tickets
        WHERE status IN ('open', 'waiting') AND NOT is_deleted AND customer_id IS NOT NULL GROUP BY customer_id
    ),
    won AS (
        SELECT customer_id, count(*) AS n FROM canonical.deals WHERE stage = 'won' AND NOT is_deleted
        GROUP BY customer_id
    )
    SELECT c.customer_id, c.name, c.account_owner, c.plan, c.is_deleted, coalesce(t.n, 0) AS open_tickets,
        coalesce(w.n, 0) AS won_deals
    FROM canonical.customers AS c LEFT JOIN tickets AS t ON t.customer_id = c.customer_id
    LEFT JOIN won AS w ON w.customer_id = c.customer_id"""
_MONEY = """
    SELECT 'paid', customer_id, currency, sum(amount - coalesce(amount_refunded, 0)) FROM canonical.payments
    WHERE status = 'succeeded' AND NOT is_deleted AND customer_id IS NOT NULL GROUP BY customer_id, currency
    UNION ALL
    SELECT 'due', customer_id, currency, sum(amount_remaining) FROM canonical.invoices
    WHERE status = 'open' AND NOT is_deleted AND customer_id IS NOT NULL AND amount_remaining IS NOT NULL
    GROUP BY customer_id, currency
    ORDER BY 1, 2, 3"""  # currencies in code order in each JSON object, whatever order the tables' rows are in


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
    with warehouse.held():  # the sums and counts are group-bys in the warehouse; one row per client comes back
        clients = warehouse.frame(_CLIENTS)
        money = warehouse.query(_MONEY)
    per_client: dict[str, dict[str, dict[str, int]]] = {"paid": {}, "due": {}}
    for kind, customer_id, currency, minor in money:
        per_client[kind].setdefault(customer_id, {})[currency] = int(minor)
    rows = []
    for row in clients.itertuples(index=False):
        paid, due = per_client["paid"].get(row.customer_id, {}), per_client["due"].get(row.customer_id, {})
        rows.append(
            {
                "customer_id": row.customer_id,
                "name": row.name,
                "owner": row.account_owner,
                "plan": row.plan,
                "currencies": ",".join(sorted(set(paid) | set(due))),
                "revenue_paid": paid,
                "open_receivables": due,
                "open_tickets": int(row.open_tickets),
                "won_deals": int(row.won_deals),
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
