"""Where alert notices go: a local JSON-lines file (the default) and a generic JSON webhook.

A webhook can speak Slack's incoming-webhook shape (`format: slack`). Delivery is retried a few times
with a short backoff inside one sensor tick; whatever still fails is left `pending` in `ops.alerts` and
tried again on the next tick. Nothing here raises into a sensor: a sink being down is a delivery state,
not a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import requests

from integration_assets.core.redact import redact
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import pending_notices, save_delivery
from integration_assets.monitoring.config import JsonLinesSink, MonitoringConfig, WebhookSink, load_monitoring

__all__ = [
    "Delivered",
    "JsonLinesFile",
    "Sink",
    "SinkError",
    "Webhook",
    "configured_sinks",
    "deliver_pending",
    "slack_message",
]

BACKOFF_SECONDS = 0.2  # first pause between attempts; doubles each time (a tick must stay short)


class SinkError(Exception):
    """A notice a sink did not accept; the message is safe to store (redacted, short)."""


class Sink(Protocol):
    @property
    def name(self) -> str:
        """Stable and secret-free: it keys the delivery state in `ops.alerts`."""
        ...

    def send(self, payload: Mapping[str, Any], timeout: float) -> None: ...


@dataclass(frozen=True)
class JsonLinesFile:
    """Appends one JSON object per line; a lock keeps lines whole when two processes write at once."""

    path: Path

    @property
    def name(self) -> str:
        return f"jsonl:{self.path}"

    def send(self, payload: Mapping[str, Any], timeout: float) -> None:
        line = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.write(line)
                handle.flush()
        except OSError as error:
            raise SinkError(f"cannot append to {self.path}: {error.strerror or error}") from error


@dataclass(frozen=True)
class Webhook:
    """POSTs the notice as JSON. Its URL may hold a secret (Slack's do), so the name never shows it."""

    url: str = field(repr=False)
    label: str
    format: Literal["json", "slack"] = "json"

    @property
    def name(self) -> str:
        return f"webhook:{self.label}"

    def send(self, payload: Mapping[str, Any], timeout: float) -> None:
        body = slack_message(payload) if self.format == "slack" else payload
        try:
            response = requests.post(self.url, json=body, timeout=timeout)
        except requests.RequestException as error:
            raise SinkError(redact(f"{type(error).__name__}: {error}", [self.url])[:300]) from error
        if response.status_code >= 300:
            raise SinkError(redact(f"HTTP {response.status_code}: {response.text[:200]}", [self.url]))


def configured_sinks(config: MonitoringConfig | None = None) -> list[Sink]:
    """The sinks of the monitoring config; a webhook whose URL variable is unset is left out."""
    config = config or load_monitoring()
    base = Path(os.environ.get("DAGSTER_HOME") or Path.cwd())
    sinks: list[Sink] = []
    for sink in config.alerts.sinks:
        if isinstance(sink, JsonLinesSink):
            sinks.append(JsonLinesFile(base / sink.path))
        elif isinstance(sink, WebhookSink) and (url := sink.resolved_url()):
            label = sink.url_env or hashlib.sha256(url.encode()).hexdigest()[:10]
            sinks.append(Webhook(url=url, label=f"{sink.format}:{label}", format=sink.format))
    return sinks


_ICONS = {("opened", "CRITICAL"): ":red_circle:", ("opened", "WARNING"): ":warning:"}


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications, `blocks` for the channel."""
    opened = payload["notice"] == "opened"
    icon = _ICONS.get((payload["notice"], payload["severity"]), ":white_check_mark:")
    headline = (
        f"{icon} {payload['severity']}: {payload['summary']}" if opened else f"{icon} Resolved: {payload['summary']}"
    )
    evidence = payload.get("evidence") or {}
    facts = [
        f"*Where:* {payload['where']}" + (f" ({payload['system']})" if payload.get("system") else ""),
        f"*Since:* {payload['opened_at']}" + ("" if opened else f" · *resolved:* {payload['resolved_at']}"),
        f"*Owner:* {payload['owner']}",
    ]
    if opened:
        counts = ", ".join(f"{k}={v}" for k, v in (evidence.get("counts") or {}).items())
        if counts:
            facts.append(f"*Counts:* {counts}")
        if evidence.get("sample_ids"):
            facts.append(f"*Sample ids:* {', '.join(map(str, evidence['sample_ids']))}")
        if payload.get("next_action"):
            facts.append(f"*Next action:* {payload['next_action']}")
    run_id = payload.get("opened_run_id") if opened else payload.get("resolved_run_id")
    context = f"alert {payload['id']} · {payload['problem_key']}" + (f" · run {run_id}" if run_id else "")
    return {
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


@dataclass
class Delivered:
    """What one round of delivery did, for the sensor's tick message."""

    sent: int = 0
    failed: int = 0
    still_pending: int = 0
    errors: list[str] = field(default_factory=list)


def _attempt(
    sink: Sink, payload: Mapping[str, Any], attempts: int, timeout: float, sleep: Callable[[float], None]
) -> tuple[int, str | None]:
    """Tries up to `attempts` times; returns how many were made and the last error (None when sent)."""
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            sink.send(payload, timeout)
            return attempt, None
        except SinkError as failure:
            error = str(failure)
        except Exception as failure:  # a sink must never crash the sensor, whatever it raises
            error = redact(f"{type(failure).__name__}: {failure}")[:300]
        if attempt < attempts:
            sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    return attempts, error


def deliver_pending(
    warehouse: Warehouse,
    sinks: Sequence[Sink],
    attempts: int,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    families: Sequence[str] | None = None,
) -> Delivered:
    """Sends every pending notice to each sink still owed it, recording each outcome as it goes.

    A recovery waits until the same sink has received the opening, so a sink never sees them out of order.
    A pending sink no longer configured is marked `dropped`: there is nowhere left to send it. `families`
    limits it to the notices of one sensor, so two sensors never send the same notice at once.
    """
    by_name = {sink.name: sink for sink in sinks}
    outcome = Delivered()
    blocked: set[tuple[str, str]] = set()  # (alert id, sink) whose opening is still undelivered
    for notice in pending_notices(warehouse, families):
        delivery = {name: dict(state) for name, state in notice.delivery.items()}
        payload = notice.alert.payload(notice.kind)
        waiting = notice.pending_sinks()
        for name in sorted(waiting, key=lambda n: list(by_name).index(n) if n in by_name else len(by_name)):
            state = delivery[name]
            sink = by_name.get(name)
            if sink is None:
                state.update(status="dropped", at=datetime.now(UTC).isoformat())
                continue
            if (notice.alert.id, name) in blocked:
                continue
            made, error = _attempt(sink, payload, attempts, timeout, sleep)
            state["attempts"] = int(state.get("attempts", 0)) + made
            if error is None:
                state.update(status="delivered", at=datetime.now(UTC).isoformat())
                state.pop("error", None)
                outcome.sent += 1
            else:
                state["error"] = error
                outcome.failed += 1
                outcome.errors.append(f"{name}: {error}")
                blocked.add((notice.alert.id, name))
        save_delivery(warehouse, notice, delivery)
        outcome.still_pending += sum(1 for state in delivery.values() if state.get("status") == "pending")
    return outcome
