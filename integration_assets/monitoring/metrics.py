"""Connector health figures from the warehouse alone: the call log, the review queue and the outbox.

Every HTTP attempt is a row of `ops.api_calls` (a retry is a row with attempt > 1, a failure one with an
error category), so the figures people watch are plain counts over a time window. Percentiles are taken in
Python (the same inclusive method as the call log's own summary), which keeps the SQL the same on DuckDB and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from integration_assets.core.http import latency_percentiles
from integration_assets.core.monitoring_config import Health
from integration_assets.core.warehouse import Warehouse

__all__ = [
    "HEALTH_COLUMNS",
    "HEALTH_TABLE",
    "SystemHealth",
    "failed_calls_since_success",
    "measure",
    "record",
    "recorded",
    "table_exists",
]

HEALTH_TABLE = "ops.integration_health"
HEALTH_COLUMNS: dict[str, str] = {
    "measured_at": "TIMESTAMPTZ NOT NULL",
    "run_id": "TEXT",
    "system": "TEXT NOT NULL",
    "window_minutes": "INTEGER NOT NULL",
    "calls": "BIGINT NOT NULL",
    "failed_calls": "BIGINT NOT NULL",
    "success_rate": "DOUBLE",
    "latency_p50_ms": "DOUBLE",
    "latency_p95_ms": "DOUBLE",
    "retries": "BIGINT NOT NULL",
    "retry_share": "DOUBLE",
    "rate_limited": "BIGINT NOT NULL",
    "rate_limited_share": "DOUBLE",
    "previous_window_calls": "BIGINT NOT NULL",
    "consecutive_failures": "BIGINT NOT NULL",
    "failing_since": "TIMESTAMPTZ",
    "last_call_at": "TIMESTAMPTZ",
    "last_successful_call_at": "TIMESTAMPTZ",
    "last_successful_sync_at": "TIMESTAMPTZ",
    "review_open": "BIGINT NOT NULL",
    "review_open_by_reason": "JSON",
    "outbox_pending": "BIGINT NOT NULL",
}


@dataclass(frozen=True)
class SystemHealth:
    """One system's figures over one window; a row of `ops.integration_health`."""

    measured_at: datetime
    run_id: str | None
    system: str
    window_minutes: int
    calls: int
    failed_calls: int
    success_rate: float | None  # None: no call in the window
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    retries: int
    retry_share: float | None
    rate_limited: int
    rate_limited_share: float | None
    previous_window_calls: int
    consecutive_failures: int  # failed calls since the last successful one (all history, not the window)
    failing_since: datetime | None
    last_call_at: datetime | None
    last_successful_call_at: datetime | None
    last_successful_sync_at: datetime | None
    review_open: int
    review_open_by_reason: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def table_exists(warehouse: Warehouse, table: str) -> bool:
    schema, name = table.split(".")
    found = warehouse.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    )
    return bool(found[0][0])


def _columns(warehouse: Warehouse, table: str) -> set[str]:
    schema, name = table.split(".")
    rows = warehouse.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, name]
    )
    return {row[0] for row in rows}


def _timestamp(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentiles(latencies: pd.Series) -> tuple[float | None, float | None]:
    """p50 and p95 as the call log's own summary computes them, so the figures agree."""
    return latency_percentiles(float(v) for v in latencies.dropna()) or (None, None)


def _calls(warehouse: Warehouse, start: datetime, end: datetime) -> pd.DataFrame:
    return warehouse.frame(
        "SELECT system, status, latency_ms, attempt, error_category FROM ops.api_calls "
        "WHERE called_at >= ? AND called_at < ?",
        [start, end],
    )


def _failure_streak(warehouse: Warehouse, system: str) -> tuple[int, datetime | None, datetime | None, datetime | None]:
    """(failed calls since the last success, the first of them, the last call, the last success)."""
    last_success = _timestamp(
        warehouse.query(
            "SELECT max(called_at) FROM ops.api_calls WHERE system = ? AND error_category IS NULL", [system]
        )[0][0]
    )
    last_call = _timestamp(warehouse.query("SELECT max(called_at) FROM ops.api_calls WHERE system = ?", [system])[0][0])
    since_sql = "SELECT count(*), min(called_at) FROM ops.api_calls WHERE system = ? AND error_category IS NOT NULL"
    if last_success is None:
        failed, first = warehouse.query(since_sql, [system])[0]
    else:
        failed, first = warehouse.query(since_sql + " AND called_at > ?", [system, last_success])[0]
    return int(failed), _timestamp(first), last_call, last_success


def failed_calls_since_success(warehouse: Warehouse, system: str, limit: int) -> list[dict[str, Any]]:
    """The latest failed calls of a failure streak (evidence for the downtime check), newest first."""
    last_success = warehouse.query(
        "SELECT max(called_at) FROM ops.api_calls WHERE system = ? AND error_category IS NULL", [system]
    )[0][0]
    sql = (
        "SELECT called_at, method, endpoint, status, attempt, error_category, request_id FROM ops.api_calls "
        "WHERE system = ? AND error_category IS NOT NULL"
    )
    params: list[Any] = [system]
    if last_success is not None:
        sql += " AND called_at > ?"
        params.append(last_success)
    frame = warehouse.frame(sql + " ORDER BY called_at DESC LIMIT ?", [*params, limit])
    return frame.to_dict("records")


def _review_open(warehouse: Warehouse) -> dict[str, dict[str, int]]:
    if not table_exists(warehouse, "ops.review_queue"):
        return {}
    rows = warehouse.query(
        "SELECT system, reason_code, count(*) FROM ops.review_queue WHERE status = 'open' "
        "GROUP BY system, reason_code ORDER BY system, reason_code"
    )
    found: dict[str, dict[str, int]] = {}
    for system, reason, count in rows:
        found.setdefault(system, {})[reason] = int(count)
    return found


def _outbox_pending(warehouse: Warehouse) -> dict[str, int]:
    """Items waiting in `ops.outbox` per system; nothing while the outbox does not exist yet."""
    if not table_exists(warehouse, "ops.outbox"):
        return {}
    columns = _columns(warehouse, "ops.outbox")
    if "system" not in columns:
        return {}
    where = " WHERE status NOT IN ('sent', 'delivered', 'done', 'cancelled')" if "status" in columns else ""
    return {
        system: int(n)
        for system, n in warehouse.query(f"SELECT system, count(*) FROM ops.outbox{where} GROUP BY system")
    }


def measure(
    warehouse: Warehouse,
    thresholds: Health,
    *,
    systems: tuple[str, ...],
    now: datetime,
    run_id: str | None = None,
    last_syncs: dict[str, datetime | None] | None = None,
) -> list[SystemHealth]:
    """Each system's health over the window ending `now`, with the window before it for traffic."""
    warehouse.ensure_ops_tables()
    window = timedelta(minutes=thresholds.window_minutes)
    current = _calls(warehouse, now - window, now)
    previous = _calls(warehouse, now - 2 * window, now - window)
    review = _review_open(warehouse)
    outbox = _outbox_pending(warehouse)
    measured: list[SystemHealth] = []
    for system in systems:
        calls = current[current["system"] == system]
        total = len(calls)
        failed = int(calls["error_category"].notna().sum())
        retries = int((calls["attempt"] > 1).sum())
        limited = int((calls["status"] == 429).sum())
        streak, failing_since, last_call, last_success = _failure_streak(warehouse, system)
        by_reason = review.get(system, {})
        p50, p95 = _percentiles(calls["latency_ms"])
        measured.append(
            SystemHealth(
                measured_at=now,
                run_id=run_id,
                system=system,
                window_minutes=thresholds.window_minutes,
                calls=total,
                failed_calls=failed,
                success_rate=_share(total - failed, total),
                latency_p50_ms=p50,
                latency_p95_ms=p95,
                retries=retries,
                retry_share=_share(retries, total),
                rate_limited=limited,
                rate_limited_share=_share(limited, total),
                previous_window_calls=int((previous["system"] == system).sum()),
                consecutive_failures=streak,
                failing_since=failing_since if streak else None,
                last_call_at=last_call,
                last_successful_call_at=last_success,
                last_successful_sync_at=(last_syncs or {}).get(system),
                review_open=sum(by_reason.values()),
                review_open_by_reason=by_reason,
                outbox_pending=outbox.get(system, 0),
            )
        )
    return measured


def record(warehouse: Warehouse, measured: list[SystemHealth]) -> None:
    """Appends one row per system to `ops.integration_health`, the table dashboards read."""
    warehouse.ensure_table(HEALTH_TABLE, HEALTH_COLUMNS)
    with warehouse.transaction() as tx:
        tx.append(HEALTH_TABLE, [m.as_row() for m in measured])


def recorded(warehouse: Warehouse, run_id: str) -> list[SystemHealth]:
    """The figures a run's `integration_health` materialization stored, so its checks judge exactly those."""
    if not table_exists(warehouse, HEALTH_TABLE):
        return []
    frame = warehouse.frame(f"SELECT * FROM {HEALTH_TABLE} WHERE run_id = ? ORDER BY measured_at", [run_id])
    found: dict[str, SystemHealth] = {}
    for row in frame.to_dict("records"):
        values = {name: row.get(name) for name in HEALTH_COLUMNS}
        for name, spec in HEALTH_COLUMNS.items():
            value = values[name]
            if spec.startswith("TIMESTAMPTZ"):
                values[name] = _timestamp(value)
            elif value is None or (isinstance(value, float) and np.isnan(value)):
                values[name] = None
            elif spec.startswith(("BIGINT", "INTEGER")):
                values[name] = int(value)
            elif spec.startswith("DOUBLE"):
                values[name] = float(value)
        values["review_open_by_reason"] = dict(values["review_open_by_reason"] or {})
        found[values["system"]] = SystemHealth(**values)  # the latest per system wins
    return list(found.values())
