"""Contract checks' evidence, and the blocking `contract` check of each canonical asset.

Canonical assets keep the promise to dashboards (`canonical/contracts.py`); their check blocks, so a table that
breaks it stops the run before anything downstream reads it. The evidence helpers here also serve the raw
contract checks of the monitoring slice. Sample values of personal-data fields are masked.
"""

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    MetadataValue,
    asset_check,
)

from integration_assets.canonical.contracts import failing_rows
from integration_assets.core.evidence import check_result, markdown_table, mask
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary

__all__ = ["build_canonical_contract_check", "contract_counts", "failure_evidence", "is_missing_index", "plain"]

COLUMNS = ("id", "table", "column", "check", "value")
MISSING_MARK = "<missing>"  # raw_contracts' rendering of an absent key: not a value, never masked


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def plain(value: Any) -> str:
    return str(value).strip().lower()


def failure_evidence(
    cases: pd.DataFrame,
    table: str,
    id_of: Callable[[Any], str],
    is_pii: Callable[[str], bool],
    personal_values: Callable[[Any], set[str]],
) -> list[dict[str, Any]]:
    """pandera failure cases as evidence rows, masking values of personal-data columns and any value or id equal
    to personal data of the same record (an email that a bug wrote into an id column is still an email)."""
    rows = []
    for case in cases.itertuples(index=False):
        value, record_id, personal = case.failure_case, id_of(case.index), personal_values(case.index)
        if value != MISSING_MARK and (is_pii(str(case.column)) or plain(value) in personal):
            value = mask(value)
        if record_id and plain(record_id) in personal:  # the record's key itself holds personal data
            record_id = mask(record_id)
        rows.append({"id": record_id, "table": table, "column": case.column, "check": case.check, "value": value})
    return rows


def contract_counts(rows: list[dict[str, Any]], failed_records: int, checked: int) -> tuple[dict[str, int], str]:
    """Numeric counts (total, records, per column) and a markdown table of failures by column and check."""
    by_check = Counter((r["table"], r["column"], r["check"]) for r in rows)
    counts = {"failures": len(rows), "failed_records": failed_records, "records_checked": checked}
    for (table, column), n in sorted(Counter((r["table"], r["column"]) for r in rows).items()):
        counts[_metric_name(f"failures_{table}_{column}")] = n
    table_rows = [{"table": t, "column": c, "check": k, "failures": n} for (t, c, k), n in sorted(by_check.items())]
    return counts, markdown_table(table_rows, ("table", "column", "check", "failures"), limit=100)


def is_missing_index(index: Any) -> bool:
    return index is None or (isinstance(index, float) and index != index)


def _is_pii(table: str, column: str) -> bool:
    try:
        return load_dictionary().is_pii(table, column)
    except KeyError:  # bookkeeping columns (is_deleted, source_records, ids) are not in the dictionary
        return False


def _live_rows(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """Rows not deleted at the source: deleted ones are kept for history as they were, exempt from contract."""
    frame = warehouse.frame(f"SELECT * FROM canonical.{table}")
    return frame[~frame["is_deleted"].fillna(False).astype(bool)].reset_index(drop=True)


# canonical asset (entity) -> the canonical tables it rebuilds, each validated by its own pandera model
CANONICAL_TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("customers", "contacts"),
    "deals": ("deals",),
    "invoices": ("invoices",),
    "payments": ("payments",),
    "tickets": ("tickets",),
}


def build_canonical_contract_check(entity: str) -> AssetChecksDefinition:
    tables = CANONICAL_TABLES[entity]

    @asset_check(
        asset=AssetKey(["canonical", entity]),
        name="contract",
        blocking=True,
        required_resource_keys={"warehouse"},
        description=f"Live rows of {', '.join(f'`canonical.{t}`' for t in tables)} against the canonical contract "
        "(`canonical/contracts.py`, pandera). Blocking: a table that breaks it stops the run before anything "
        "downstream reads it.",
    )
    def contract(context: AssetCheckExecutionContext) -> AssetCheckResult:
        warehouse: Warehouse = context.resources.warehouse.open()
        rows: list[dict[str, Any]] = []
        failed_records = checked = 0
        for table in tables:
            live = _live_rows(warehouse, table)
            failed, cases = failing_rows(table, live)
            key_column = live.columns[0]

            pii = [column for column in live.columns if _is_pii(table, column)]

            def id_of(index: Any, live: pd.DataFrame = live, key_column: str = key_column) -> str:
                return "" if is_missing_index(index) else str(live.iloc[int(index)][key_column])

            def personal_values(index: Any, live: pd.DataFrame = live, pii: list[str] = pii) -> set[str]:
                if is_missing_index(index):
                    return set()
                row = live.iloc[int(index)]
                return {plain(row[c]) for c in pii if isinstance(row[c], str) and row[c]}

            if len(cases):
                rows += failure_evidence(
                    cases, f"canonical.{table}", id_of, lambda c, t=table: _is_pii(t, c), personal_values
                )
            failed_records += len(failed)
            checked += len(live)
        counts, by_check = contract_counts(rows, failed_records, checked)
        return check_result(
            passed=not rows,
            system="canonical",
            summary=f"canonical/{entity}: {failed_records} of {checked} live rows break the canonical contract "
            f"({len(rows)} failures)",
            next_action=f"Find what wrote the failing rows of canonical/{entity} (a mapping bug or a manual edit), "
            "fix it and rematerialize; downstream assets wait for this check",
            records=rows,
            columns=COLUMNS,
            counts=counts,
            extra={"failures_by_check": MetadataValue.md(by_check)},
        )

    return contract


def canonical_contract_checks() -> list[AssetChecksDefinition]:
    return [build_canonical_contract_check(entity) for entity in CANONICAL_TABLES]
