"""Alerts: one notice when a problem opens, one when it gets worse, silence otherwise, one notice when it clears.

A problem is identified by what failed, not by how it failed: `check:<asset>:<check>` for an asset check,
`run:<job>` for a job, `run:<job>:<asset>` for an asset of the implicit asset job (whose runs select
unrelated assets), `freshness:<asset>` for an asset late by its freshness policy. Each episode of a problem
(open → resolved) is one row of `ops.alerts`, written from the same structured evidence the check or run
already carries, so the alert says what the UI says.

Why it is shaped this way:

- Every observation carries an id ordering the instance's events (the event log storage id; on run-sharded
  SQLite, which numbers events per run, the event's time in microseconds: see
  `core/dagster_adapter.read_events_after`) and the identity of the Dagster instance it was read from
  (`event_source`). A problem remembers the last id it applied (`last_event_id`),
  so processing the same evaluation twice (a sensor tick that crashed after writing and before saving its
  cursor) changes nothing. Ids are compared only within one instance: a reset instance, or a switch from
  SQLite to PostgreSQL, numbers its events afresh, so across instances the evaluation's time decides
  (newer than `last_seen_at` applies, older or equal is taken as seen).
- The newest evaluation decides. Of several evaluations of one problem read in the same batch (one tick),
  only the newest counts: a failure and its recovery read together send nothing, since the problem is over
  by the time anyone could act on it; a recovery and a new failure read together open a new episode. The
  evaluations stay in the Dagster UI's check history either way.
- An open problem keeps its current severity on the row. When a failing evaluation raises it (WARNING →
  CRITICAL), one `escalated` notice goes out with the new evidence; a lower or equal severity only updates
  the row (so a later rise is announced again), never a notice.
- Each notice keeps its delivery state per sink (`open_delivery`, `resolved_delivery`). A sink that got
  the notice is never sent it again; one that failed stays `pending` and is retried on the next tick.
- Everything that reaches the table, and hence a sink, went through `redact`: no secret or raw email.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from integration_assets.core.redact import redact
from integration_assets.core.warehouse import Transaction, Warehouse, column_definitions

__all__ = [
    "ALERTS_COLUMNS",
    "ALERTS_COLUMN_DESCRIPTIONS",
    "ALERTS_TABLE",
    "Alert",
    "Applied",
    "Notice",
    "Observation",
    "Severity",
    "alert_of",
    "apply_observations",
    "ensure_alerts_table",
    "load_alerts",
    "pending_notices",
    "problem_key_for_check",
    "problem_key_for_freshness",
    "problem_key_for_job",
    "problem_key_for_job_asset",
    "redacted",
    "save_delivery",
]

Severity = Literal["WARNING", "CRITICAL"]
Status = Literal["open", "resolved"]
NoticeKind = Literal["opened", "escalated", "resolved"]
SEVERITY_RANK: dict[str, int] = {"WARNING": 1, "CRITICAL": 2}

ALERTS_TABLE = "ops.alerts"
ALERTS_COLUMNS: dict[str, str] = {
    "id": "TEXT NOT NULL",
    "problem_key": "TEXT NOT NULL",
    "kind": "TEXT NOT NULL",  # check | run | freshness
    "family": "TEXT NOT NULL",  # which sensor watches it: drift, missing_records, …, checks, runs
    "status": "TEXT NOT NULL",  # open | resolved
    "severity": "TEXT NOT NULL",  # WARNING | CRITICAL
    "system": "TEXT",
    "asset": "TEXT",
    "check_name": "TEXT",
    "job": "TEXT",
    "summary": "TEXT NOT NULL",
    "evidence": "JSON NOT NULL",
    "next_action": "TEXT NOT NULL",
    "owner": "TEXT NOT NULL",
    "opened_at": "TIMESTAMPTZ NOT NULL",
    "resolved_at": "TIMESTAMPTZ",
    "last_seen_at": "TIMESTAMPTZ NOT NULL",
    "opened_run_id": "TEXT",
    "resolved_run_id": "TEXT",
    "last_event_id": "BIGINT NOT NULL",
    "open_delivery": "JSON NOT NULL",  # sink name → {"status": pending|delivered|dropped, "attempts", …}
    "resolved_delivery": "JSON",
    "pending": "BOOLEAN NOT NULL DEFAULT FALSE",  # some notice still waits for a sink
    # added after the first release of the table: nullable, added to an existing table by ensure_alerts_table
    "event_source": "TEXT",  # identity of the Dagster instance whose event storage numbered last_event_id
    "escalated_at": "TIMESTAMPTZ",  # the latest rise of severity (WARNING → CRITICAL) while open
    "escalated_run_id": "TEXT",
    "escalated_delivery": "JSON",
}
# What each column holds, as the `ops/alerts` asset's column schema shows it.
ALERTS_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "The episode's id (one row per episode of a problem: open → resolved).",
    "problem_key": "What failed: check:ASSET:CHECK, run:JOB, run:JOB:ASSET or freshness:ASSET.",
    "kind": "check, run or freshness.",
    "family": "Which alert sensor watches it: drift, missing_records, connector_health, traffic, checks, runs, "
    "freshness.",
    "status": "open or resolved.",
    "severity": "WARNING or CRITICAL (the current one while open).",
    "system": "The system concerned (a catalog role), if one.",
    "asset": "The asset concerned, if one.",
    "check_name": "The asset check, for a check problem.",
    "job": "The job, for a run problem.",
    "summary": "What the alert says (redacted).",
    "evidence": "The check's or run's structured evidence: counts, sample ids, run id (redacted).",
    "next_action": "What to do about it.",
    "owner": "The team told (monitoring.yaml owners).",
    "opened_at": "When the problem was first seen failing.",
    "resolved_at": "When it was first seen passing again.",
    "last_seen_at": "The time of the latest evaluation applied.",
    "opened_run_id": "The run whose evaluation opened it.",
    "resolved_run_id": "The run whose evaluation resolved it.",
    "last_event_id": "The id of the latest event applied (re-processing it changes nothing).",
    "open_delivery": "The opening notice's state per sink: pending, delivered, dropped.",
    "resolved_delivery": "The recovery notice's state per sink.",
    "pending": "Some notice of the episode still waits for a sink.",
    "event_source": "The Dagster instance last_event_id was read from.",
    "escalated_at": "When its severity last rose (WARNING → CRITICAL) while open.",
    "escalated_run_id": "The run whose evaluation escalated it.",
    "escalated_delivery": "The escalation notice's state per sink (superseded: the sink still owed the opening, "
    "which carries the escalated evidence).",
}
ADDED_COLUMNS = ("event_source", "escalated_at", "escalated_run_id", "escalated_delivery")
_DELIVERY_COLUMNS: dict[str, str] = {
    "opened": "open_delivery",
    "escalated": "escalated_delivery",
    "resolved": "resolved_delivery",
}
_LOCK_KEY = 0x0A1E_27ED  # one writer of ops.alerts at a time on PostgreSQL (DuckDB has its file lock)


def problem_key_for_check(asset: str, check_name: str) -> str:
    return f"check:{asset}:{check_name}"


def problem_key_for_freshness(asset: str) -> str:
    """An asset late by its freshness policy (the freshness daemon's WARN and FAIL states)."""
    return f"freshness:{asset}"


def problem_key_for_job(job: str) -> str:
    return f"run:{job}"


def problem_key_for_job_asset(job: str, asset: str) -> str:
    """A run problem of one asset (or `step <key>`) of a job whose runs select different assets (`__ASSET_JOB`)."""
    return f"run:{job}:{asset}"


def redacted(value: Any) -> Any:
    """Every string inside `value` passed through `redact`, structure kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


@dataclass(frozen=True)
class Observation:
    """One evaluation of a problem: failing or passing, with the evidence to alert on when failing."""

    problem_key: str
    kind: Literal["check", "run", "freshness"]
    family: str
    failing: bool
    # orders observations and makes re-processing a no-op: the event log storage id, or on run-sharded SQLite
    # the event's time in microseconds (core/dagster_adapter.read_events_after)
    event_id: int
    at: datetime
    run_id: str | None
    source: str = ""  # the instance event_id was read from (ids of two instances don't compare)
    severity: Severity = "CRITICAL"
    system: str | None = None
    asset: str | None = None
    check_name: str | None = None
    job: str | None = None
    summary: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    next_action: str = ""
    owner: str = ""


@dataclass(frozen=True)
class Alert:
    """One episode of a problem, as stored in `ops.alerts` and sent to sinks."""

    id: str
    problem_key: str
    kind: str
    family: str
    status: Status
    severity: Severity
    system: str | None
    asset: str | None
    check_name: str | None
    job: str | None
    summary: str
    evidence: Mapping[str, Any]
    next_action: str
    owner: str
    opened_at: datetime
    resolved_at: datetime | None
    opened_run_id: str | None
    resolved_run_id: str | None
    escalated_at: datetime | None = None
    escalated_run_id: str | None = None

    @property
    def where(self) -> str:
        if self.kind == "check":
            return f"{self.asset} · check {self.check_name}"
        if self.kind == "freshness":
            return f"{self.asset} · freshness"
        return f"job {self.job}" + (f" · {self.asset}" if self.asset else "")

    def payload(self, notice: NoticeKind) -> dict[str, Any]:
        """What a sink receives: the whole alert, times as ISO 8601, redacted once more for safety."""
        data = asdict(self)
        data["opened_at"] = self.opened_at.isoformat()
        data["resolved_at"] = self.resolved_at.isoformat() if self.resolved_at else None
        data["escalated_at"] = self.escalated_at.isoformat() if self.escalated_at else None
        data["evidence"] = dict(self.evidence)
        return redacted({"notice": notice, "where": self.where, **data})


@dataclass(frozen=True)
class Notice:
    """A notice (opened, escalated or resolved) of one alert that some sinks still have to receive."""

    alert: Alert
    kind: NoticeKind
    delivery: Mapping[str, Mapping[str, Any]]

    def pending_sinks(self) -> list[str]:
        return [name for name, state in self.delivery.items() if state.get("status") == "pending"]


@dataclass
class Applied:
    """What one batch of observations changed."""

    opened: list[Alert] = field(default_factory=list)
    escalated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    unchanged: int = 0


def ensure_alerts_table(warehouse: Warehouse) -> None:
    """Creates `ops.alerts`; on a table created before the later columns existed, adds them (nullable)."""
    warehouse.ensure_table(ALERTS_TABLE, ALERTS_COLUMNS, primary_key=["id"])
    added = {name: ALERTS_COLUMNS[name] for name in ADDED_COLUMNS}
    with warehouse.transaction() as tx:
        _lock(tx)
        for definition in column_definitions(ALERTS_TABLE, added, tx.backend):
            tx.execute(f"ALTER TABLE {ALERTS_TABLE} ADD COLUMN IF NOT EXISTS {definition}")


def _lock(tx: Transaction) -> None:
    if tx.backend == "postgres":
        tx.execute("SELECT pg_advisory_xact_lock(?)", [_LOCK_KEY])


def _rows(tx: Transaction, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    rows = tx.execute(sql, list(params))
    return [dict(zip(tx.last_columns, row, strict=True)) for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def alert_of(row: Mapping[str, Any]) -> Alert:
    """A row of `ops.alerts` (as `load_alerts` returns it) as the `Alert` it stores."""
    names = Alert.__dataclass_fields__
    return Alert(**{name: (_json(row[name]) if name == "evidence" else row.get(name)) for name in names})


def _latest_per_problem(observations: Iterable[Observation]) -> list[Observation]:
    """The latest evaluation decides: of several in one batch (all of one instance), only the newest per
    problem counts, so a failure and its recovery read in the same tick send nothing."""
    latest: dict[str, Observation] = {}
    for observation in observations:
        kept = latest.get(observation.problem_key)
        if kept is None or observation.event_id > kept.event_id:
            latest[observation.problem_key] = observation
    return sorted(latest.values(), key=lambda o: o.event_id)


def _pending(sinks: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {name: {"status": "pending", "attempts": 0} for name in sinks}


def apply_observations(warehouse: Warehouse, observations: Iterable[Observation], sinks: Sequence[str]) -> Applied:
    """Opens, keeps or resolves each problem's episode; new notices wait for the given sinks.

    One transaction: either the whole batch is recorded or none of it, and a repeated batch is a no-op.
    """
    applied = Applied()
    batch = _latest_per_problem(observations)
    if not batch:
        return applied
    with warehouse.transaction() as tx:
        _lock(tx)
        for observation in batch:
            # the newest episode by time: ids of episodes recorded from different instances do not compare
            latest = _rows(
                tx,
                f"SELECT * FROM {ALERTS_TABLE} WHERE problem_key = ? "
                "ORDER BY opened_at DESC, last_seen_at DESC, id DESC LIMIT 1",
                [observation.problem_key],
            )
            episode = latest[0] if latest else None
            is_open = episode is not None and episode["status"] == "open"
            if episode is not None and _seen(episode, observation):
                applied.unchanged += 1  # seen already: re-processing changes nothing
            elif observation.failing and not is_open:
                applied.opened.append(_open(tx, observation, sinks))
            elif observation.failing:  # still open: remembered; announced again only when it got worse
                escalated = _update_open(tx, episode, observation, sinks)
                if escalated is not None:
                    applied.escalated.append(escalated)
                else:
                    applied.unchanged += 1
            elif is_open:
                applied.resolved.append(_resolve(tx, episode, observation, sinks))
            else:
                applied.unchanged += 1  # passing, nothing open
    return applied


def _seen(episode: Mapping[str, Any], observation: Observation) -> bool:
    """Whether the episode already reflects this evaluation (or a newer one).

    Storage ids order evaluations of one instance; across instances (a reset instance, SQLite → PostgreSQL)
    they mean nothing, and the evaluation's timestamp orders them instead."""
    if (episode.get("event_source") or "") == observation.source:
        return episode["last_event_id"] >= observation.event_id
    return _aware(episode["last_seen_at"]) >= _aware(observation.at)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _update_open(
    tx: Transaction, episode: Mapping[str, Any], observation: Observation, sinks: Sequence[str]
) -> Alert | None:
    """Records a failing evaluation of an open problem; returns the alert when its severity rose."""
    previous = SEVERITY_RANK.get(episode["severity"], 0)
    rose = SEVERITY_RANK.get(observation.severity, 0) > previous
    assignments = "last_event_id = ?, event_source = ?, last_seen_at = ?, severity = ?"
    params: list[Any] = [observation.event_id, observation.source, observation.at, observation.severity]
    if not rose:
        tx.execute(f"UPDATE {ALERTS_TABLE} SET {assignments} WHERE id = ?", [*params, episode["id"]])
        return None
    # A sink still owed the opening gets it with the new severity and evidence: the escalation is not news to it.
    opening = _json(episode["open_delivery"]) or {}
    delivery = {
        name: {"status": "superseded", "attempts": 0}
        if (opening.get(name) or {}).get("status") == "pending"
        else {"status": "pending", "attempts": 0}
        for name in sinks
    }
    summary, evidence = redact(observation.summary), redacted(dict(observation.evidence))
    next_action = redact(observation.next_action) or episode["next_action"]
    tx.execute(
        f"UPDATE {ALERTS_TABLE} SET {assignments}, summary = ?, evidence = ?, next_action = ?, escalated_at = ?, "
        "escalated_run_id = ?, escalated_delivery = ?, pending = ? WHERE id = ?",
        [
            *params,
            summary,
            json.dumps(evidence, default=str),
            next_action,
            observation.at,
            observation.run_id,
            json.dumps(delivery),
            _has_pending(delivery) or _has_pending(opening),
            episode["id"],
        ],
    )
    return replace(
        alert_of(episode),
        severity=observation.severity,
        summary=summary,
        evidence=evidence,
        next_action=next_action,
        escalated_at=observation.at,
        escalated_run_id=observation.run_id,
    )


def _open(tx: Transaction, observation: Observation, sinks: Sequence[str]) -> Alert:
    identity = f"{observation.problem_key}@{observation.source}:{observation.event_id}"
    alert_id = hashlib.sha256(identity.encode()).hexdigest()[:20]
    alert = Alert(
        id=alert_id,
        problem_key=observation.problem_key,
        kind=observation.kind,
        family=observation.family,
        status="open",
        severity=observation.severity,
        system=observation.system,
        asset=observation.asset,
        check_name=observation.check_name,
        job=observation.job,
        summary=redact(observation.summary),
        evidence=redacted(dict(observation.evidence)),
        next_action=redact(observation.next_action),
        owner=observation.owner,
        opened_at=observation.at,
        resolved_at=None,
        opened_run_id=observation.run_id,
        resolved_run_id=None,
    )
    row = asdict(alert)
    row.update(
        evidence=dict(alert.evidence),
        last_seen_at=observation.at,
        last_event_id=observation.event_id,
        event_source=observation.source,
        open_delivery=_pending(sinks),
        resolved_delivery=None,
        escalated_delivery=None,
        pending=bool(sinks),
    )
    tx.append(ALERTS_TABLE, [row])
    return alert


def _resolve(tx: Transaction, episode: Mapping[str, Any], observation: Observation, sinks: Sequence[str]) -> Alert:
    resolved_delivery = _pending(sinks)
    tx.execute(
        f"UPDATE {ALERTS_TABLE} SET status = 'resolved', resolved_at = ?, resolved_run_id = ?, last_event_id = ?, "
        "event_source = ?, last_seen_at = ?, resolved_delivery = ?, pending = ? WHERE id = ?",
        [
            observation.at,
            observation.run_id,
            observation.event_id,
            observation.source,
            observation.at,
            json.dumps(resolved_delivery),
            bool(sinks)
            or _has_pending(_json(episode["open_delivery"]))
            or _has_pending(_json(episode.get("escalated_delivery"))),
            episode["id"],
        ],
    )
    return replace(alert_of(episode), status="resolved", resolved_at=observation.at, resolved_run_id=observation.run_id)


def _has_pending(delivery: Mapping[str, Any] | None) -> bool:
    return any(state.get("status") == "pending" for state in (delivery or {}).values())


def pending_notices(warehouse: Warehouse, families: Sequence[str] | None = None) -> list[Notice]:
    """Every notice some sink has not received yet (of `families`, or all), oldest first: an opening
    before its escalation, and both before its recovery."""
    where, params = "WHERE pending", []
    if families is not None:
        where += f" AND family IN ({', '.join('?' for _ in families)})" if families else " AND FALSE"
        params = list(families)
    with warehouse.transaction() as tx:
        rows = _rows(tx, f"SELECT * FROM {ALERTS_TABLE} {where} ORDER BY opened_at, id", params)
    notices: list[Notice] = []
    for row in rows:
        alert = alert_of(row)
        for kind, column in _DELIVERY_COLUMNS.items():
            delivery = _json(row.get(column))
            if _has_pending(delivery):
                notices.append(Notice(alert, kind, delivery))
    return notices


def save_delivery(warehouse: Warehouse, notice: Notice, delivery: Mapping[str, Mapping[str, Any]]) -> None:
    """Stores one notice's new delivery state; the row stays `pending` while any of its notices waits."""
    column = _DELIVERY_COLUMNS[notice.kind]
    others = [name for name in _DELIVERY_COLUMNS.values() if name != column]
    with warehouse.transaction() as tx:
        _lock(tx)
        rows = _rows(tx, f"SELECT {', '.join(others)} FROM {ALERTS_TABLE} WHERE id = ?", [notice.alert.id])
        still_pending = _has_pending(delivery) or any(_has_pending(_json(rows[0][name])) for name in others if rows)
        tx.execute(
            f"UPDATE {ALERTS_TABLE} SET {column} = ?, pending = ? WHERE id = ?",
            [json.dumps(delivery, default=str), still_pending, notice.alert.id],
        )


def load_alerts(
    warehouse: Warehouse, problem_key: str | None = None, *, status: Status | None = None
) -> list[dict[str, Any]]:
    """Rows of `ops.alerts` (all, one problem's episodes, and/or those of one `status`), oldest first, JSON
    columns decoded: for the `ops/alerts` asset (`status="open"`), tests and operators."""
    conditions = [(column, value) for column, value in (("problem_key", problem_key), ("status", status)) if value]
    where = ("WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)) if conditions else ""
    with warehouse.transaction() as tx:
        rows = _rows(
            tx, f"SELECT * FROM {ALERTS_TABLE} {where} ORDER BY opened_at, id", [value for _, value in conditions]
        )
    for row in rows:
        for name in ("evidence", "open_delivery", "resolved_delivery", "escalated_delivery"):
            row[name] = _json(row[name])
    return rows
