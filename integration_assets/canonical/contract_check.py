"""The blocking `contract` check of each canonical asset, evaluated in the asset's own step.

Canonical assets keep the promise to dashboards (`canonical/contracts.py`); their check blocks, so a table that
breaks it stops the run before anything downstream reads it. Sample values of personal-data fields are masked.
"""

from typing import Any

import pandas as pd
from dagster import AssetCheckResult, MetadataValue

from integration_assets.canonical.build import table_columns
from integration_assets.canonical.contracts import MODELS, failing_rows
from integration_assets.core.contract_evidence import (
    SCHEMA,
    contract_counts,
    failure_evidence,
    is_missing_index,
    named_ids,
    plain,
)
from integration_assets.core.evidence import check_result
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary

__all__ = ["CANONICAL_TABLES", "contract_description", "evaluate_contract"]


def _is_pii(table: str, column: str) -> bool:
    try:
        return load_dictionary().is_pii(table, column)
    except KeyError:  # bookkeeping columns (is_deleted, source_records, ids) are not in the dictionary
        return False


def _live_rows(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """Rows not deleted at the source (deleted ones are kept for history as they were, exempt from contract),
    with the columns the check reads: the key, those the contract judges and the personal ones it masks."""
    columns = list(table_columns(load_dictionary(), table))
    judged = MODELS[table].to_schema().columns.keys()
    read = [c for c in columns if c == columns[0] or c in judged or _is_pii(table, c)]
    selected = ", ".join(f'"{column}"' for column in read)
    return warehouse.frame(f"SELECT {selected} FROM canonical.{table} WHERE NOT is_deleted")


# canonical asset (entity) -> the canonical tables it rebuilds, each validated by its own pandera model
CANONICAL_TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("customers", "contacts"),
    "deals": ("deals",),
    "invoices": ("invoices",),
    "payments": ("payments",),
    "tickets": ("tickets",),
}


def contract_description(entity: str) -> str:
    tables = CANONICAL_TABLES[entity]
    return (
        f"Live rows of {', '.join(f'`canonical.{t}`' for t in tables)} against the canonical contract "
        "(`canonical/contracts.py`, pandera). Blocking: a table that breaks it stops the run before anything "
        "downstream reads it. Lists each failing row (id, column, check, value; personal data masked)."
    )


def evaluate_contract(entity: str, warehouse: Warehouse) -> AssetCheckResult:
    rows: list[dict[str, Any]] = []
    failed_records = checked = 0
    for table in CANONICAL_TABLES[entity]:
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
        f"({len(rows)} failures){named_ids(rows)}",
        next_action=f"Find what wrote the failing rows of canonical/{entity} (a mapping bug or a manual edit), "
        "fix it and rematerialize; downstream assets wait for this check",
        records=rows,
        columns=SCHEMA,
        limit=load_monitoring().reconciliation.sample_rows,
        counts=counts,
        extra={"failures_by_check": MetadataValue.md(by_check)},
    )
