"""The one shape of a check's evidence, so the UI, the sensors and the alerts read every check alike.

Every check of this project returns `check_result(...)`: a pass or fail, a summary, the system, the next
action, the exact records at fault (ids, field, one side, other side), their ids for the alert
(`sample_ids`), and numeric counts that the UI plots. Personal data is masked with `mask` before it is
shown: the value is replaced by a short fingerprint, so two sides can still be seen to differ.

The records are a Dagster table (`records`, given a `TableSchema`): the UI shows it inline with typed columns,
where a markdown table hides behind "[Show Markdown]". It keeps every record at fault up to a cap, and says
so: `records_total` counted, `records_shown` in the table, `records_note` both and the cap in words. Each
record id can carry a link to the vendor's page (the catalog's `record_page`), present only when the vendor's
base URL is its real API. Checks that still pass column names get the older markdown table under the same key.

The fingerprint is a keyed hash (HMAC-SHA256), so a guessed value (an email) cannot be confirmed by hashing
it: the key comes from `INTEGRATION_MASK_KEY`, else from a random key generated once and kept in
`$DAGSTER_HOME/integration_mask.key` (the project's `.dagster_home/` without DAGSTER_HOME), so fingerprints
stay the same across runs and processes of one deployment. No key is ever in the repository.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

__all__ = [
    "EVIDENCE_KEYS",
    "MASK_KEY_ENV",
    "MASK_KEY_FILE",
    "RECORDS_KEYS",
    "SUMMARY_IDS",
    "as_check",
    "check_result",
    "first_named",
    "markdown_table",
    "mask",
    "mask_key",
    "records_table",
    "schema",
]

# metadata keys every check sets; monitoring/alerts reads them back from the check evaluation
EVIDENCE_KEYS = ("system", "summary", "next_action", "problems", "sample_ids")
# what a check given a schema adds: the records table, how many were at fault, shown, and the cap
RECORDS_KEYS = ("records", "records_total", "records_shown", "records_note")
SAMPLE_IDS = 20
MASK_KEY_ENV = "INTEGRATION_MASK_KEY"
MASK_KEY_FILE = "integration_mask.key"
PROJECT_HOME = Path(__file__).resolve().parents[2] / ".dagster_home"


@cache
def _stored_key(path: Path) -> bytes:
    """The key kept in `path`, created once (atomically: two processes starting together agree on one key)."""
    for _ in range(50):
        try:
            existing = path.read_text().strip()
        except FileNotFoundError:
            existing = ""
        except OSError:
            break
        if existing:
            return existing.encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(draft, path)  # fails when another process created it first: then its key is read
            except FileExistsError:
                pass
            finally:
                draft.unlink(missing_ok=True)
        except OSError:
            break
        time.sleep(0.01)
    # nowhere to keep a key: fingerprints are stable within this process only, never guessable
    return secrets.token_hex(32).encode()


def mask_key() -> bytes:
    """`INTEGRATION_MASK_KEY`, else the key stored under DAGSTER_HOME (the project's .dagster_home without it).

    The stored key is read once per process: a process that changes DAGSTER_HOME midway (tests do) keeps its
    fingerprints consistent."""
    configured = os.environ.get(MASK_KEY_ENV, "").strip()
    if configured:
        return configured.encode()
    return _stored_key(_key_path())


@cache
def _key_path() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_HOME) / MASK_KEY_FILE


def mask(value: Any) -> str:
    """Personal data as a fingerprint: `•••3f2a1c`, equal values giving equal fingerprints (under one key)."""
    if value is None or value == "":
        return ""
    digest = hmac.new(mask_key(), str(value).strip().lower().encode(), hashlib.sha256).hexdigest()[:6]
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
        lines.append(
            f"\n… and {len(rows) - limit} more rows not shown: the counts include them; `sample_ids` lists "
            f"the first {SAMPLE_IDS} ids"
        )
    return "\n".join(lines)


def schema(*columns: tuple[str, str] | tuple[str, str, str]) -> TableSchema:
    """A table schema from `(name, type[, description])`: types as Dagster shows them (string, int, url, ...)."""
    return TableSchema(columns=[TableColumn(*column) for column in columns])


def _typed(value: Any) -> str | int | float | bool | None:
    """A value a TableRecord takes: numbers, booleans and None as they are, anything else as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def records_table(rows: Sequence[Mapping[str, Any]], table_schema: TableSchema, limit: int) -> MetadataValue:
    """The first `limit` rows as a Dagster table of `table_schema`'s columns (a column a row lacks is empty)."""
    names = [column.name for column in table_schema.columns]
    return MetadataValue.table(
        records=[TableRecord({name: _typed(row.get(name)) for name in names}) for row in rows[:limit]],
        schema=table_schema,
    )


SUMMARY_IDS = 5  # records a failing summary names; `sample_ids` and the `records` table hold more


def first_named(names: Sequence[str], limit: int = SUMMARY_IDS) -> str:
    """`12, 40, 41 (+3 more)`: the first records at fault, once each, for a summary."""
    unique = list(dict.fromkeys(names))
    more = f" (+{len(unique) - limit} more)" if len(unique) > limit else ""
    return f"{', '.join(unique[:limit])}{more}"


def check_result(
    *,
    passed: bool,
    system: str,
    summary: str,
    next_action: str,
    records: Sequence[Mapping[str, Any]] = (),
    columns: Sequence[str] | TableSchema = ("id",),
    counts: Mapping[str, int | float] | None = None,
    limit: int = 50,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    extra: Mapping[str, Any] | None = None,
    id_column: str = "id",
) -> AssetCheckResult:
    """A check outcome with its evidence. `records` are the exact rows at fault, already masked.

    With a `TableSchema` as `columns` they are a Dagster table of at most `limit` rows (with the `RECORDS_KEYS`
    counts); with column names, a markdown table."""
    ids: list[str] = list(dict.fromkeys(str(r[id_column]) for r in records if r.get(id_column) is not None))
    metadata: dict[str, Any] = {
        "system": MetadataValue.text(system),
        "summary": MetadataValue.text(summary),
        "next_action": MetadataValue.text(next_action if not passed else ""),
        "problems": len(records),
        "sample_ids": MetadataValue.text(", ".join(ids[:SAMPLE_IDS])),
    }
    if isinstance(columns, TableSchema):
        metadata["records"] = records_table(records, columns, limit)
        metadata["records_total"] = len(records)
        metadata["records_shown"] = min(len(records), limit)
        metadata["records_note"] = MetadataValue.text(
            f"{min(len(records), limit)} of {len(records)} records at fault shown; the table holds at most {limit}"
            + (f", and `sample_ids` the first {SAMPLE_IDS} ids" if len(records) > limit else "")
        )
    else:
        metadata["records"] = MetadataValue.md(markdown_table(records, columns, limit))
    for name, value in (counts or {}).items():
        metadata[name] = value
    metadata.update(extra or {})
    return AssetCheckResult(passed=passed, severity=severity, description=summary, metadata=metadata)


def as_check(result: AssetCheckResult, key: AssetCheckKey) -> AssetCheckResult:
    """`result` as the evaluation of `key`: a step that evaluates several checks computes each result without
    knowing which of its checks it answers, and Dagster needs to be told."""
    return result._replace(asset_key=key.asset_key, check_name=key.name)
