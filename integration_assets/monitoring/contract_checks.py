"""Contract checks: the pandera contracts run as asset checks, so every run shows in the UI what broke.

Raw assets keep the vendor's promise (`systems/<role>/contracts.py`); their check does not block, because the
canonical layer already routes each violating record to the review queue and must still run. Canonical
assets keep the promise to dashboards (`canonical/contracts.py`); their check blocks, so a table that breaks
it stops the run before anything downstream reads it. Sample values of personal-data fields are masked.
"""

import re
from collections import Counter
from collections.abc import Callable, Iterable
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
from integration_assets.canonical.raw_contracts import check_stream, contract_model
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import MISSING, load_dictionary, resolve_path
from integration_assets.monitoring.evidence import check_result, markdown_table, mask
from integration_assets.monitoring.targets import CANONICAL_TABLES, RAW_STREAMS, RawStream

__all__ = ["canonical_contract_checks", "failure_evidence", "raw_contract_checks"]

COLUMNS = ("id", "table", "column", "check", "value")
MISSING_MARK = "<missing>"  # raw_contracts' rendering of an absent key: not a value, never masked


def _metric_name(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _plain(value: Any) -> str:
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
        if value != MISSING_MARK and (is_pii(str(case.column)) or _plain(value) in personal):
            value = mask(value)
        if record_id and _plain(record_id) in personal:  # the record's key itself holds personal data
            record_id = mask(record_id)
        rows.append({"id": record_id, "table": table, "column": case.column, "check": case.check, "value": value})
    return rows


def _counts(rows: list[dict[str, Any]], failed_records: int, checked: int) -> tuple[dict[str, int], str]:
    """Numeric counts (total, records, per column) and a markdown table of failures by column and check."""
    by_check = Counter((r["table"], r["column"], r["check"]) for r in rows)
    counts = {"failures": len(rows), "failed_records": failed_records, "records_checked": checked}
    for (table, column), n in sorted(Counter((r["table"], r["column"]) for r in rows).items()):
        counts[_metric_name(f"failures_{table}_{column}")] = n
    table_rows = [{"table": t, "column": c, "check": k, "failures": n} for (t, c, k), n in sorted(by_check.items())]
    return counts, markdown_table(table_rows, ("table", "column", "check", "failures"), limit=100)


def _missing_is_none(index: Any) -> bool:
    return index is None or (isinstance(index, float) and index != index)


# ------------------------------------------------------------------------------------------------ raw


def _raw_pii_paths(stream: RawStream) -> dict[str, str]:
    """Contract column → payload path, for the paths the field dictionary flags as personal data."""
    _, columns = contract_model(stream.system, stream.object_type)
    pii_paths = {
        path
        for found in load_dictionary().fields_from(stream.system, stream.object_type)
        if found.spec.pii
        for path in found.paths
    }
    return {column: path for column, path in columns.items() if path in pii_paths}


def _values_at(payload: Any, paths: Iterable[str]) -> set[str]:
    found = (resolve_path(payload, path) for path in paths)
    return {_plain(value) for value in found if value is not MISSING and value not in (None, "")}


def build_raw_contract_check(stream: RawStream) -> AssetChecksDefinition:
    @asset_check(
        asset=stream.key,
        name="contract",
        blocking=False,
        required_resource_keys={"warehouse"},
        description=f"Live records of `{stream.table}` against the vendor's promise in "
        f"`systems/{stream.system}/contracts.py` (pandera). Not blocking: the canonical layer sends violating "
        "records to the review queue and must still run.",
    )
    def contract(context: AssetCheckExecutionContext) -> AssetCheckResult:
        warehouse: Warehouse = context.resources.warehouse.open()
        warehouse.ensure_raw_table(stream.table)
        live = {rid: r["payload"] for rid, r in warehouse.raw_records(stream.table).items() if not r["is_deleted"]}
        result = check_stream(stream.system, stream.object_type, live)
        pii = _raw_pii_paths(stream)
        rows = failure_evidence(
            result.failure_cases,
            stream.table,
            id_of=lambda index: "" if _missing_is_none(index) else str(index),
            is_pii=pii.__contains__,
            personal_values=lambda index: _values_at(live.get(str(index), {}), pii.values()),
        )
        counts, by_check = _counts(rows, len(result.failed), result.checked)
        return check_result(
            passed=result.ok,
            system=stream.system,
            summary=f"{stream.name}: {len(result.failed)} of {result.checked} live records break the raw contract "
            f"({len(rows)} failures)",
            next_action=f"Look at the review queue's contract_violation items of {stream.system}/"
            f"{stream.object_type}; if the vendor changed its shape on purpose, update "
            f"`systems/{stream.system}/contracts.py` (see the drift check)",
            records=rows,
            columns=COLUMNS,
            counts=counts,
            extra={"failures_by_check": MetadataValue.md(by_check)},
        )

    return contract


def raw_contract_checks() -> list[AssetChecksDefinition]:
    return [build_raw_contract_check(stream) for stream in RAW_STREAMS]


# ------------------------------------------------------------------------------------------- canonical


def _is_pii(table: str, column: str) -> bool:
    try:
        return load_dictionary().is_pii(table, column)
    except KeyError:  # bookkeeping columns (is_deleted, source_records, ids) are not in the dictionary
        return False


def _live_rows(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """Rows not deleted at the source: deleted ones are kept for history as they were, exempt from contract."""
    frame = warehouse.frame(f"SELECT * FROM canonical.{table}")
    return frame[~frame["is_deleted"].fillna(False).astype(bool)].reset_index(drop=True)


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
                return "" if _missing_is_none(index) else str(live.iloc[int(index)][key_column])

            def personal_values(index: Any, live: pd.DataFrame = live, pii: list[str] = pii) -> set[str]:
                if _missing_is_none(index):
                    return set()
                row = live.iloc[int(index)]
                return {_plain(row[c]) for c in pii if isinstance(row[c], str) and row[c]}

            if len(cases):
                rows += failure_evidence(
                    cases, f"canonical.{table}", id_of, lambda c, t=table: _is_pii(t, c), personal_values
                )
            failed_records += len(failed)
            checked += len(live)
        counts, by_check = _counts(rows, failed_records, checked)
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
