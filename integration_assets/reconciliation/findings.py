"""Every record a reconciliation check finds at fault, kept in `ops.reconciliation_findings`, one row per finding.

The check's metadata shows the counts and a capped sample; this table holds the full list, at any size, with
when each finding was first and last seen and when it was resolved. A finding is identified by its check and
asset, the record (system, object type, vendor id) and the problem. Each evaluation of a check upserts what it
found (first_seen kept while the finding stays open, last_seen and the values refreshed) and marks the open
findings it no longer found as resolved; a finding that comes back after being resolved opens again as new.

Why new, persisting and resolved are counted: the alert of a failing check fires once per problem (the check),
so a check that keeps failing with the same findings stays quiet; the check's summary names the findings that
are new since the last evaluation, so whoever reads it sees what changed, not the whole list again.

All the work is set-based: the current findings go to a staging table in one bulk append, then one upsert,
one comparison and one update run in the warehouse, on DuckDB and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integration_assets.core.warehouse import Warehouse

__all__ = [
    "FINDINGS_COLUMNS",
    "FINDINGS_TABLE",
    "FindingsDelta",
    "ensure_findings_table",
    "open_findings",
    "record_findings",
]

FINDINGS_TABLE = "ops.reconciliation_findings"
_STAGE_TABLE = "ops.reconciliation_findings_stage"
_KEY = ("asset", "check_name", "system", "object_type", "record_id", "problem")
_VALUES = ("field", "this_side", "other_side", "this_minor", "other_minor", "other_record")
FINDINGS_COLUMNS: dict[str, str] = {
    "asset": "TEXT NOT NULL",  # the asset the check is shown on (canonical/deals)
    "check_name": "TEXT NOT NULL",
    "system": "TEXT NOT NULL",  # the role of the system holding the record to open
    "object_type": "TEXT NOT NULL",
    "record_id": "TEXT NOT NULL",  # the vendor's own id
    "problem": "TEXT NOT NULL",
    "field": "TEXT",
    "this_side": "TEXT",
    "other_side": "TEXT",
    "this_minor": "BIGINT",
    "other_minor": "BIGINT",
    "other_record": "TEXT",
    "status": "TEXT NOT NULL",  # open | resolved
    "first_seen": "TIMESTAMPTZ NOT NULL",  # when this episode of the finding was first found
    "last_seen": "TIMESTAMPTZ NOT NULL",
    "resolved_at": "TIMESTAMPTZ",
    "evaluations": "BIGINT NOT NULL DEFAULT 1",  # how many evaluations found it in this episode
    "last_evaluation": "TEXT NOT NULL",  # the evaluation that last found it
}
_STAGE_COLUMNS: dict[str, str] = {
    "evaluation": "TEXT NOT NULL",
    **{name: spec for name, spec in FINDINGS_COLUMNS.items() if name in (*_KEY, *_VALUES)},
}


@dataclass(frozen=True)
class FindingsDelta:
    """What one evaluation changed in the findings table: the new findings' rows, and how many persisted
    from the last evaluation or were resolved by this one."""

    new: list[Mapping[str, Any]] = field(default_factory=list)
    persisting: int = 0
    resolved: int = 0
    table: str = FINDINGS_TABLE


def ensure_findings_table(warehouse: Warehouse) -> None:
    warehouse.ensure_table(FINDINGS_TABLE, FINDINGS_COLUMNS, primary_key=list(_KEY))
    warehouse.ensure_table(_STAGE_TABLE, _STAGE_COLUMNS)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _minor(value: Any) -> int | None:
    return None if value is None else int(value)


def record_findings(
    warehouse: Warehouse, asset: str, check_name: str, rows: Sequence[Mapping[str, Any]]
) -> FindingsDelta:
    """Upserts the findings of one evaluation of `check_name` on `asset` (diff rows, `common.DIFF_SCHEMA`) and
    resolves the open ones it no longer found. Rows without a record id (a count, not a record) are not stored."""
    ensure_findings_table(warehouse)
    evaluation = uuid.uuid4().hex
    now = datetime.now(UTC)
    staged: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if row.get("id") is None:
            continue
        finding = {
            "evaluation": evaluation,
            "asset": asset,
            "check_name": check_name,
            "system": str(row["system"]),
            "object_type": str(row["object_type"]),
            "record_id": str(row["id"]),
            "problem": str(row["problem"]),
            "field": _text(row.get("field")),
            "this_side": _text(row.get("this_side")),
            "other_side": _text(row.get("other_side")),
            "this_minor": _minor(row.get("this_minor")),
            "other_minor": _minor(row.get("other_minor")),
            "other_record": _text(row.get("other_record")),
        }
        staged.setdefault(tuple(finding[k] for k in _KEY), finding)  # one finding per key: the first named
    keys = " AND ".join(f"f.{k} = s.{k}" for k in _KEY)
    values = ", ".join(_VALUES)
    with warehouse.transaction() as tx:
        tx.lock_table(FINDINGS_TABLE)  # PostgreSQL: one evaluation writes findings at a time
        tx.append(_STAGE_TABLE, list(staged.values()))
        new = _rows(
            tx.execute(
                f"SELECT s.system, s.object_type, s.record_id, s.problem, s.field, s.this_side, s.other_side "
                f"FROM {_STAGE_TABLE} s LEFT JOIN {FINDINGS_TABLE} f ON {keys} AND f.status = 'open' "
                "WHERE s.evaluation = ? AND f.record_id IS NULL ORDER BY s.system, s.object_type, s.record_id",
                [evaluation],
            ),
            ("system", "object_type", "id", "problem", "field", "this_side", "other_side"),
        )
        tx.execute(
            f"INSERT INTO {FINDINGS_TABLE} AS f ({', '.join(_KEY)}, {values}, status, first_seen, last_seen, "
            f"resolved_at, evaluations, last_evaluation) "
            f"SELECT {', '.join(_KEY)}, {values}, 'open', ?, ?, NULL, 1, evaluation FROM {_STAGE_TABLE} "
            f"WHERE evaluation = ? "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in _VALUES)
            + ", first_seen = CASE WHEN f.status = 'open' THEN f.first_seen ELSE excluded.first_seen END, "
            "evaluations = CASE WHEN f.status = 'open' THEN f.evaluations + 1 ELSE 1 END, "
            "status = 'open', last_seen = excluded.last_seen, resolved_at = NULL, "
            "last_evaluation = excluded.last_evaluation",
            [now, now, evaluation],
        )
        tx.execute(f"DELETE FROM {_STAGE_TABLE} WHERE evaluation = ?", [evaluation])
        scope = "asset = ? AND check_name = ? AND status = 'open' AND last_evaluation <> ?"
        params = [asset, check_name, evaluation]
        resolved = tx.execute(f"SELECT count(*) FROM {FINDINGS_TABLE} WHERE {scope}", params)[0][0]
        if resolved:
            tx.execute(
                f"UPDATE {FINDINGS_TABLE} SET status = 'resolved', resolved_at = ? WHERE {scope}", [now, *params]
            )
    return FindingsDelta(new=new, persisting=len(staged) - len(new), resolved=int(resolved))


def _rows(found: list[tuple], names: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in found]


def open_findings(warehouse: Warehouse, check_name: str | None = None) -> list[dict[str, Any]]:
    """The open findings (of one check, or of all), as stored: what a person works through."""
    ensure_findings_table(warehouse)
    where, params = "status = 'open'", []
    if check_name is not None:
        where, params = f"{where} AND check_name = ?", [check_name]
    return warehouse.records(
        f"SELECT * FROM {FINDINGS_TABLE} WHERE {where} ORDER BY check_name, system, object_type, record_id, problem",
        params,
    )
