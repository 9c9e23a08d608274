"""The one shape of a check's evidence, so the UI, the sensors and the alerts read every check alike.

Every check of this project returns `check_result(...)`: a pass or fail, a summary, the system, the next
action, the exact records at fault as a markdown table (ids, field, one side, other side), their ids for the
alert (`sample_ids`), and numeric counts that the UI plots. Personal data is masked with `mask` before it
is shown: the value is replaced by a short fingerprint, so two sides can still be seen to differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

__all__ = ["EVIDENCE_KEYS", "check_result", "markdown_table", "mask"]

# metadata keys every check sets; monitoring/alerts reads them back from the check evaluation
EVIDENCE_KEYS = ("system", "summary", "next_action", "problems", "sample_ids")
SAMPLE_IDS = 20


def mask(value: Any) -> str:
    """Personal data as a fingerprint: `•••3f2a1c`, equal values giving equal fingerprints."""
    if value is None or value == "":
        return ""
    digest = hashlib.sha256(str(value).strip().lower().encode()).hexdigest()[:6]
    return f"•••{digest}"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], limit: int) -> str:
    """The first `limit` rows as a markdown table, with a line saying how many were left out."""
    if not rows:
        return "none"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n… and {len(rows) - limit} more (every id is in the counts and in `sample_ids` order)")
    return "\n".join(lines)


def check_result(
    *,
    passed: bool,
    system: str,
    summary: str,
    next_action: str,
    records: Sequence[Mapping[str, Any]] = (),
    columns: Sequence[str] = ("id",),
    counts: Mapping[str, int | float] | None = None,
    limit: int = 50,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    extra: Mapping[str, Any] | None = None,
    id_column: str = "id",
) -> AssetCheckResult:
    """A check outcome with its evidence. `records` are the exact rows at fault, already masked."""
    ids: list[str] = list(dict.fromkeys(str(r[id_column]) for r in records if r.get(id_column) is not None))
    metadata: dict[str, Any] = {
        "system": MetadataValue.text(system),
        "summary": MetadataValue.text(summary),
        "next_action": MetadataValue.text(next_action if not passed else ""),
        "problems": len(records),
        "sample_ids": MetadataValue.text(", ".join(ids[:SAMPLE_IDS])),
        "records": MetadataValue.md(markdown_table(records, columns, limit)),
    }
    for name, value in (counts or {}).items():
        metadata[name] = value
    metadata.update(extra or {})
    return AssetCheckResult(passed=passed, severity=severity, description=summary, metadata=metadata)
