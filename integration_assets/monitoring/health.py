"""Connector health: the `ops/integration_health` asset and the checks that judge it against config.

The asset measures each system over the configured window (monitoring/metrics.py), reports the figures as
numeric metadata (so the UI plots them) and appends them to `ops.integration_health` for dashboards. Its
checks judge the figures that materialization stored (or, run alone, measure afresh): thresholds and
severities come from monitoring.yaml, and every check lists its evidence, figure against threshold.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    TableSchema,
    asset,
    asset_check,
)

from integration_assets.core.catalog import Catalog
from integration_assets.core.columns import sql_columns, storage_kind, table_metadata
from integration_assets.core.evidence import check_result, markdown_table
from integration_assets.core.monitoring_config import Health, load_monitoring
from integration_assets.core.owners import team_owners
from integration_assets.monitoring.credentials import credential_statuses
from integration_assets.monitoring.metrics import (
    HEALTH_COLUMNS,
    HEALTH_TABLE,
    SystemHealth,
    failed_calls_since_success,
    measure,
    record,
    recorded,
)

__all__ = ["HEALTH_KEY", "build_health_asset", "build_health_checks", "last_successful_syncs"]

HEALTH_KEY = AssetKey(["ops", "integration_health"])
EVIDENCE_COLUMNS = ("id", "value", "threshold", "verdict")
HEALTH_COLUMN_DESCRIPTIONS = {
    "measured_at": "When this row was measured (the materialization).",
    "system": "The system's role (crm, billing, support).",
    "window_minutes": "The window the call figures cover (health.window_minutes).",
    "calls": "HTTP attempts in the window (ops.api_calls).",
    "failed_calls": "Attempts that failed (an error status or no answer).",
    "success_rate": "Share of attempts that succeeded; empty without calls.",
    "latency_p50_ms": "Median latency of the attempts, in milliseconds.",
    "latency_p95_ms": "95th percentile latency of the attempts, in milliseconds.",
    "retries": "Attempts that were retries of an earlier one.",
    "rate_limited": "Attempts the vendor answered with 429.",
    "previous_window_calls": "Attempts in the window before (the traffic check compares them).",
    "consecutive_failures": "Attempts failing in a row up to now (the downtime check).",
    "last_successful_sync_at": "The oldest of the system's streams' latest materializations.",
    "review_open": "Open review items of the system; by reason in review_open_by_reason.",
    "outbox_pending": "Write-backs into the system waiting in ops.outbox.",
}


def last_successful_syncs(instance: DagsterInstance, catalog: Catalog) -> dict[str, datetime | None]:
    """Per system, the oldest of its streams' latest materializations: every stream had synced by then."""
    found: dict[str, datetime | None] = {}
    for role in catalog.roles:
        keys = [stream.asset_key for stream in catalog.streams_of(role)]
        latest = [instance.get_latest_materialization_event(key) for key in keys]
        stamps = [event.timestamp for event in latest if event is not None]
        complete = len(stamps) == len(keys) and stamps
        found[role] = datetime.fromtimestamp(min(stamps), UTC) if complete else None
    return found


def _numbers(health: SystemHealth, now: datetime) -> dict[str, float | int | None]:
    synced = health.last_successful_sync_at
    numbers: dict[str, float | int | None] = {
        "calls": health.calls,
        "success_rate": health.success_rate,
        "failed_calls": health.failed_calls,
        "latency_p50_ms": health.latency_p50_ms,
        "latency_p95_ms": health.latency_p95_ms,
        "retries": health.retries,
        "rate_limited_429s": health.rate_limited,
        "consecutive_failures": health.consecutive_failures,
        "review_open": health.review_open,
        "outbox_pending": health.outbox_pending,
        "minutes_since_sync": round((now - synced).total_seconds() / 60, 1) if synced else None,
    }
    numbers.update({f"review_open_{reason}": n for reason, n in health.review_open_by_reason.items()})
    return numbers


def build_health_asset(catalog: Catalog) -> AssetsDefinition:
    """`ops/integration_health`, measuring every system of the catalog."""

    @asset(
        key=HEALTH_KEY,
        group_name="ops",
        kinds={"python", storage_kind()},
        owners=team_owners(),
        metadata=table_metadata(HEALTH_TABLE, TableSchema(sql_columns(HEALTH_COLUMNS, HEALTH_COLUMN_DESCRIPTIONS))),
        required_resource_keys={"warehouse"},
        description="How each connector is doing: its calls, latency, retries, review items and last sync.\n\n"
        f"Per system ({', '.join(catalog.roles)}), over the window of `health.window_minutes` in "
        "monitoring.yaml: calls, success rate, p50/p95 latency, failed calls, retries and 429s from "
        "`ops.api_calls`; open review items by reason; pending outbox items; the last successful sync. Appended "
        "to `ops.integration_health` (one row per system and materialization) for dashboards.",
    )
    def integration_health(context: AssetExecutionContext) -> MaterializeResult:
        config = load_monitoring()
        warehouse = context.resources.warehouse.open()
        now = datetime.now(UTC)
        measured = measure(
            warehouse,
            config.health,
            now=now,
            run_id=context.run.run_id,
            last_syncs=last_successful_syncs(context.instance, catalog),
            systems=catalog.roles,
        )
        record(warehouse, measured)
        metadata: dict[str, Any] = {"window_minutes": config.health.window_minutes}
        rows = []
        for health in measured:
            numbers = _numbers(health, now)
            metadata.update({f"{health.system}_{name}": value for name, value in numbers.items() if value is not None})
            rows.append({"system": health.system, **numbers})
        columns = ["system", "calls", "success_rate", "latency_p95_ms", "retries", "rate_limited_429s", "review_open"]
        metadata["systems"] = MetadataValue.md(markdown_table(rows, [*columns, "minutes_since_sync"], len(rows)))
        return MaterializeResult(metadata=metadata)

    return integration_health


def _figures(context: AssetCheckExecutionContext, roles: tuple[str, ...]) -> dict[str, SystemHealth]:
    """What this run's materialization recorded; measured now when the check runs without it."""
    warehouse = context.resources.warehouse.open()
    found = recorded(warehouse, context.run.run_id)
    if not found:
        found = measure(
            warehouse, load_monitoring().health, now=datetime.now(UTC), run_id=context.run.run_id, systems=roles
        )
    return {health.system: health for health in found}


def _verdict(ok: bool) -> str:
    return "ok" if ok else "breached"


def _counts(health: SystemHealth) -> dict[str, int | float]:
    numbers = {
        "calls": health.calls,
        "failed_calls": health.failed_calls,
        "success_rate": health.success_rate,
        "latency_p95_ms": health.latency_p95_ms,
        "retry_share": health.retry_share,
        "rate_limited_share": health.rate_limited_share,
    }
    return {name: value for name, value in numbers.items() if value is not None}


def judge_connector_health(health: SystemHealth, limits: Health) -> AssetCheckResult:
    """Success rate, p95 latency, retry share and 429 share against their thresholds."""
    figures = [
        ("success_rate", health.success_rate, f">= {limits.success_rate_min}", lambda v: v >= limits.success_rate_min),
        (
            "latency_p95_ms",
            health.latency_p95_ms,
            f"<= {limits.p95_latency_ms_max}",
            lambda v: v <= limits.p95_latency_ms_max,
        ),
        ("retry_share", health.retry_share, f"<= {limits.retry_share_max}", lambda v: v <= limits.retry_share_max),
        (
            "rate_limited_share",
            health.rate_limited_share,
            f"<= {limits.rate_limited_share_max}",
            lambda v: v <= limits.rate_limited_share_max,
        ),
    ]
    evidence = [
        {"id": name, "value": value, "threshold": threshold, "verdict": _verdict(value is None or within(value))}
        for name, value, threshold, within in figures
    ]
    evidence.insert(0, {"id": "calls", "value": health.calls, "threshold": f">= {limits.min_calls} to judge"})
    window = f"the last {health.window_minutes} minutes"
    extra = {"evidence": MetadataValue.md(markdown_table(evidence, EVIDENCE_COLUMNS, len(evidence)))}
    if health.calls < limits.min_calls:
        return check_result(
            passed=True,
            system=health.system,
            summary=f"{health.system}: {health.calls} calls in {window}, fewer than {limits.min_calls}: "
            "not enough evidence to judge rates",
            next_action="",
            counts=_counts(health),
            extra=extra,
        )
    breached = [row for row in evidence if row.get("verdict") == "breached"]
    summary = (
        f"{health.system}: " + ", ".join(f"{row['id']} {row['value']} (want {row['threshold']})" for row in breached)
        if breached
        else f"{health.system}: {health.calls} calls in {window}, every figure within its threshold"
    )
    return check_result(
        passed=not breached,
        system=health.system,
        summary=summary,
        next_action="look at the failed calls of ops.api_calls by error_category and endpoint; a rising 429 share "
        "means the request budget is too high for the vendor's limit",
        records=breached,
        columns=EVIDENCE_COLUMNS,
        counts=_counts(health),
        severity=AssetCheckSeverity.WARN,
        extra=extra,
    )


def judge_downtime(health: SystemHealth, limits: Health, failed_calls: list[dict[str, Any]]) -> AssetCheckResult:
    """Down: the last `down_after_failures` calls all failed, none succeeding since. Judged on any number of calls."""
    down = health.consecutive_failures >= limits.down_after_failures
    evidence = [
        {"id": "consecutive_failures", "value": health.consecutive_failures},
        {"id": "down_after_failures", "value": limits.down_after_failures},
        {"id": "failing_since", "value": health.failing_since},
        {"id": "last_successful_call_at", "value": health.last_successful_call_at},
        {"id": "last_call_at", "value": health.last_call_at},
    ]
    if down:
        summary = (
            f"{health.system} is down: {health.consecutive_failures} calls failed in a row since "
            f"{health.failing_since}, none succeeded since (threshold {limits.down_after_failures})"
        )
    elif health.last_call_at is None:
        summary = f"{health.system}: no call recorded yet"
    else:
        summary = f"{health.system}: up, {health.consecutive_failures} failed calls since the last success"
    columns = ("request_id", "called_at", "method", "endpoint", "status", "attempt", "error_category")
    return check_result(
        passed=not down,
        system=health.system,
        summary=summary,
        next_action="check the vendor's status page and the credentials; syncs resume from their cursors once "
        "it answers again",
        records=failed_calls if down else [],
        columns=columns,
        counts={"consecutive_failures": health.consecutive_failures, "down_after_failures": limits.down_after_failures},
        severity=AssetCheckSeverity.ERROR,
        extra={
            "evidence": MetadataValue.md(markdown_table(evidence, ("id", "value"), len(evidence))),
            "alert_severity": "CRITICAL",
        },
        id_column="request_id",
    )


def judge_traffic(health: SystemHealth, limits: Health) -> AssetCheckResult:
    """A drop: calls in the window below `traffic_drop_share` of the window before, when that one was busy."""
    floor = limits.traffic_drop_share * health.previous_window_calls
    evidence = [
        {"id": "calls", "value": health.calls, "threshold": f">= {floor:g}"},
        {"id": "previous_window_calls", "value": health.previous_window_calls, "threshold": f">= {limits.min_calls}"},
    ]
    extra = {"evidence": MetadataValue.md(markdown_table(evidence, EVIDENCE_COLUMNS, len(evidence)))}
    counts = {"calls": health.calls, "previous_window_calls": health.previous_window_calls}
    if health.previous_window_calls < limits.min_calls:
        return check_result(
            passed=True,
            system=health.system,
            summary=f"{health.system}: {health.previous_window_calls} calls in the window before, fewer than "
            f"{limits.min_calls}: not enough evidence to judge a drop",
            next_action="",
            counts=counts,
            extra=extra,
        )
    dropped = health.calls < floor
    verb = "dropped to" if dropped else "at"
    return check_result(
        passed=not dropped,
        system=health.system,
        summary=f"{health.system}: traffic {verb} {health.calls} calls from {health.previous_window_calls} in the "
        f"window before (a drop is below {limits.traffic_drop_share:.0%})",
        next_action="see whether the scheduled syncs still run (schedules, run queue) and whether the vendor "
        "answers; a paused schedule or a stuck run stops traffic",
        records=[{**row, "verdict": "breached"} for row in evidence[:1]] if dropped else [],
        columns=EVIDENCE_COLUMNS,
        counts=counts,
        severity=AssetCheckSeverity.WARN,
        extra=extra,
    )


def judge_credentials(today: date, role: str) -> AssetCheckResult:
    """One system's credential: a warning `warn_days` before its configured expiry date, an error once it has come.

    One check per system, so each expiring credential is its own problem: its own alert, owner and recovery."""
    config = load_monitoring().credentials
    status = next((s for s in credential_statuses(config, today) if s.system == role), None)
    columns = ("id", "vendor", "expires_on", "days_left", "warn_days", "state")
    if status is None:
        return check_result(
            passed=True,
            system=role,
            summary=f"{role}: no credential expiry configured (credentials.expires_on.{role} in monitoring.yaml)",
            next_action="",
        )
    at_fault = status.state != "valid"
    if status.expired:
        summary = f"{role} credential expired on {status.expires_on}"
    elif status.expiring:
        summary = f"{role} credential expires on {status.expires_on}, in {status.days_left} days"
    else:
        summary = f"{role} credential is valid until {status.expires_on}, more than {config.warn_days} days away"
    return check_result(
        passed=not at_fault,
        system=role,
        summary=summary,
        next_action=f"issue a new {status.as_record()['vendor']} key or token in the vendor's admin console, set it "
        f"in the environment and update credentials.expires_on.{role} in monitoring.yaml",
        records=[status.as_record()] if at_fault else [],
        columns=columns,
        counts={
            "credentials_expiring": int(status.expiring),
            "credentials_expired": int(status.expired),
            "days_left": status.days_left,
        },
        severity=AssetCheckSeverity.ERROR if status.expired else AssetCheckSeverity.WARN,
        extra={"evidence": MetadataValue.md(markdown_table([status.as_record()], columns, 1))},
    )


def _system_check(
    name: str, role: str, roles: tuple[str, ...], description: str, judge: Callable[..., AssetCheckResult]
) -> AssetChecksDefinition:
    @asset_check(
        asset=HEALTH_KEY,
        name=f"{name}_{role}",
        required_resource_keys={"warehouse"},
        description=description,
        blocking=False,
    )
    def system_check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        limits = load_monitoring().health
        health = _figures(context, roles)[role]
        if name == "downtime":
            warehouse = context.resources.warehouse.open()
            return judge(health, limits, failed_calls_since_success(warehouse, role, limits.down_after_failures * 4))
        return judge(health, limits)

    return system_check


def _credential_check(role: str) -> AssetChecksDefinition:
    @asset_check(
        asset=HEALTH_KEY,
        name=f"credential_expiry_{role}",
        description=f"A warning `credentials.warn_days` before the {role} key or token expires "
        f"(`credentials.expires_on.{role}` in monitoring.yaml), an error once it has.",
        blocking=False,
    )
    def credential_expiry() -> AssetCheckResult:
        return judge_credentials(datetime.now(UTC).date(), role)

    return credential_expiry


DESCRIPTIONS = {
    "connector_health": (
        "Success rate, p95 latency, retry share and 429 share over the window, against thresholds "
        "in monitoring.yaml; passes with a note when too few calls were made to judge.",
        judge_connector_health,
    ),
    "downtime": (
        "The last `down_after_failures` calls failed and none succeeded since: the vendor is down.",
        judge_downtime,
    ),
    "traffic": (
        "Calls in the window fell below `traffic_drop_share` of the window before (when that one had at "
        "least `min_calls`).",
        judge_traffic,
    ),
}


def build_health_checks(catalog: Catalog) -> list[AssetChecksDefinition]:
    """Per system: connector health, downtime, traffic and credential expiry."""
    roles = catalog.roles
    return [
        *(
            _system_check(name, role, roles, text, judge)
            for name, (text, judge) in DESCRIPTIONS.items()
            for role in roles
        ),
        *(_credential_check(role) for role in roles),
    ]
