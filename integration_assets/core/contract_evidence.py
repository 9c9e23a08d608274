"""What a failed pandera contract shows as check evidence, raw or canonical alike: one row per failure case,
personal data masked, and counts per table and column that the UI plots."""

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

from integration_assets.core.evidence import markdown_table, mask

__all__ = ["COLUMNS", "MISSING_MARK", "contract_counts", "failure_evidence", "is_missing_index", "plain"]

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
