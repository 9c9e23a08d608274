"""What a failed pandera contract shows as check evidence, raw or canonical alike: one row per failure case
(the record's id, with a link to its vendor page where there is one), personal data masked, as a table of
`SCHEMA`, and counts per table and column that the UI plots."""

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
from dagster import TableSchema

from integration_assets.core.evidence import SUMMARY_IDS, first_named, markdown_table, mask, schema

__all__ = [
    "COLUMNS",
    "MISSING_MARK",
    "SCHEMA",
    "contract_counts",
    "failure_evidence",
    "is_missing_index",
    "named_ids",
    "plain",
]

SCHEMA: TableSchema = schema(
    ("id", "string", "The record's id (masked when it holds personal data)."),
    ("link", "url", "The record's page at the vendor; empty for canonical rows and the local sandbox."),
    ("table", "string", "The table the record is in."),
    ("column", "string", "The column that breaks the contract."),
    ("check", "string", "The contract's check that failed."),
    ("value", "string", "The failing value (masked when it is personal data)."),
)
COLUMNS = tuple(column.name for column in SCHEMA.columns)
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
    link_of: Callable[[str], str | None] = lambda record_id: None,
) -> list[dict[str, Any]]:
    """pandera failure cases as evidence rows, masking values of personal-data columns and any value or id equal
    to personal data of the same record (an email that a bug wrote into an id column is still an email).

    `link_of` gives a record's page at its vendor; a masked id gets none (the link would show it)."""
    rows = []
    for case in cases.itertuples(index=False):
        value, record_id, personal = case.failure_case, id_of(case.index), personal_values(case.index)
        if value != MISSING_MARK and (is_pii(str(case.column)) or plain(value) in personal):
            value = mask(value)
        link = link_of(record_id) if record_id else None
        if record_id and plain(record_id) in personal:  # the record's key itself holds personal data
            record_id, link = mask(record_id), None
        rows.append(
            {
                "id": record_id,
                "link": link,
                "table": table,
                "column": case.column,
                "check": case.check,
                "value": "" if value is None else str(value),
            }
        )
    return rows


def contract_counts(rows: list[dict[str, Any]], failed_records: int, checked: int) -> tuple[dict[str, int], str]:
    """Numeric counts (total, records, per column) and a markdown table of failures by column and check."""
    by_check = Counter((r["table"], r["column"], r["check"]) for r in rows)
    counts = {"failures": len(rows), "failed_records": failed_records, "records_checked": checked}
    for (table, column), n in sorted(Counter((r["table"], r["column"]) for r in rows).items()):
        counts[_metric_name(f"failures_{table}_{column}")] = n
    table_rows = [{"table": t, "column": c, "check": k, "failures": n} for (t, c, k), n in sorted(by_check.items())]
    return counts, markdown_table(table_rows, ("table", "column", "check", "failures"), limit=100)


def named_ids(rows: list[dict[str, Any]], limit: int = SUMMARY_IDS) -> str:
    """`; ids 12, 40, 41 (+3 more)`: the first failing records, for a summary; empty when none has an id."""
    ids = [str(r["id"]) for r in rows if r.get("id")]
    return f"; ids {first_named(ids, limit)}" if ids else ""


def is_missing_index(index: Any) -> bool:
    return index is None or (isinstance(index, float) and index != index)
