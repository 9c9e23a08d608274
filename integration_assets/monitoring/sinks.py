"""Where alert notices go: a local JSON-lines file (the default) and a generic JSON webhook.

A webhook can speak Slack's incoming-webhook shape (`format: slack`). Delivery is retried a few times
with a short backoff inside one sensor tick; whatever still fails is left `pending` in `ops.alerts` and
tried again on the next tick. Nothing here raises into a sensor: a sink being down is a delivery state,
not a crash.

A tick's delivery is bounded, so a hanging webhook cannot push the sensor past Dagster's 60 s evaluation
timeout (which would lose the tick's cursor): local files get every notice first; a sink that fails a
notice is skipped for the rest of the tick (its notices stay pending); and no attempt starts, nor lasts,
beyond an overall deadline (`alerts.delivery_deadline_seconds`, 40 s by default).

A webhook URL may carry its secret in the path (Slack's `/services/T…/B…/…`) or the query (`?token=`):
every error stored or logged has the URL's path and query masked, in whole and piece by piece.

A webhook posts only to a host `alerts.webhook_hosts` lists (loopback always, for tests), over https unless
loopback, and never follows a redirect: an alert carries ids and evidence, and a mistyped or hijacked URL must
not turn it into a request to an internal admin route. A refused or redirected post is a delivery error that
names the host or the redirect's target.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import requests

from integration_assets.core.credentials import redirect_target
from integration_assets.core.http import is_loopback
from integration_assets.core.monitoring_config import JsonLinesSink, MonitoringConfig, WebhookSink, load_monitoring
from integration_assets.core.redact import redact
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import pending_notices, save_delivery

__all__ = [
    "Delivered",
    "JsonLinesFile",
    "Sink",
    "SinkError",
    "Webhook",
    "configured_sinks",
    "deliver_pending",
    "mask_url",
    "slack_message",
]

BACKOFF_SECONDS = 0.2  # first pause between attempts; doubles each time (a tick must stay short)
DEADLINE_SECONDS = 40.0  # default bound on one tick's delivery, well inside Dagster's 60 s sensor timeout
_MIN_PIECE = 3  # shorter pieces of a URL's path or query are left as they are ("v1", "id")


def mask_url(text: str, url: str) -> str:
    """`text` with the URL's path and query masked: whole, and every segment and parameter in it.

    Error messages of HTTP clients quote the URL, or only its path (`url: /services/T0/B0/secret`), sometimes
    percent-decoded; each of those forms, and each piece of them, becomes `***`. The scheme and host stay,
    so the error still says where delivery failed."""
    parts = urlsplit(url)
    pieces: set[str] = {url}
    for chunk in (parts.path, parts.query, parts.fragment, f"{parts.path}?{parts.query}" if parts.query else ""):
        pieces.update({chunk, unquote(chunk)})
        pieces.update(re.split(r"[/?&=#;]", chunk))
        pieces.update(re.split(r"[/?&=#;]", unquote(chunk)))
    if parts.username or parts.password:
        pieces.update({parts.username or "", parts.password or ""})
    for piece in sorted((p for p in pieces if len(p) >= _MIN_PIECE), key=len, reverse=True):
        text = text.replace(piece, "***")
    return redact(text)


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
    allowed_hosts: tuple[str, ...] = ()  # alerts.webhook_hosts; loopback is always allowed

    @property
    def name(self) -> str:
        return f"webhook:{self.label}"

    def refusal(self) -> str | None:
        """Why this URL must not be posted to, or None: a host outside the allow-list, or http off this machine."""
        parts = urlsplit(self.url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            return f"the webhook URL ({parts.scheme}://{host or 'no host'}) is not an http(s) URL with a host"
        if is_loopback(host):
            return None
        if not host_allowed(host, self.allowed_hosts):
            return (
                f"webhook host {host} is not in alerts.webhook_hosts of monitoring.yaml: not sent "
                f"(allowed: {', '.join(self.allowed_hosts) or 'none but loopback'})"
            )
        if parts.scheme != "https":
            return f"webhook host {host} is not loopback: https is required, not {parts.scheme}"
        return None

    def send(self, payload: Mapping[str, Any], timeout: float) -> None:
        refused = self.refusal()
        if refused is not None:
            raise SinkError(refused)
        body = slack_message(payload) if self.format == "slack" else payload
        try:
            response = requests.post(self.url, json=body, timeout=timeout, allow_redirects=False)
        except requests.RequestException as error:
            raise SinkError(self.scrub(f"{type(error).__name__}: {error}")[:300]) from error
        if response.is_redirect or 300 <= response.status_code < 400:
            target = self.scrub(redirect_target(response))
            raise SinkError(f"HTTP {response.status_code}: the webhook redirected to {target}; not followed")
        if response.status_code >= 300:
            raise SinkError(self.scrub(f"HTTP {response.status_code}: {response.text[:200]}"))

    def scrub(self, text: str) -> str:
        """Text safe to store and log: the URL's path and query (where its secret lives) masked."""
        return mask_url(text, self.url)


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """`host` is listed, or is a subdomain of a `*.domain` entry (not the bare domain: list it too)."""
    host = host.lower().rstrip(".")
    for entry in (a.strip().lower().rstrip(".") for a in allowed):
        if entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1:
            return True
        if host == entry:
            return True
    return False


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
            hosts = tuple(config.alerts.webhook_hosts)
            sinks.append(Webhook(url=url, label=f"{sink.format}:{label}", format=sink.format, allowed_hosts=hosts))
    return sinks


_ICONS = {
    ("opened", "CRITICAL"): ":red_circle:",
    ("opened", "WARNING"): ":warning:",
    ("escalated", "CRITICAL"): ":red_circle:",
    ("escalated", "WARNING"): ":warning:",
}


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications, `blocks` for the channel."""
    opened = payload["notice"] in ("opened", "escalated")
    icon = _ICONS.get((payload["notice"], payload["severity"]), ":white_check_mark:")
    if payload["notice"] == "escalated":
        headline = f"{icon} Escalated to {payload['severity']}: {payload['summary']}"
    elif opened:
        headline = f"{icon} {payload['severity']}: {payload['summary']}"
    else:
        headline = f"{icon} Resolved: {payload['summary']}"
    evidence = payload.get("evidence") or {}
    facts = [
        f"*Where:* {payload['where']}" + (f" ({payload['system']})" if payload.get("system") else ""),
        f"*Since:* {payload['opened_at']}"
        + ("" if opened else f" · *resolved:* {payload['resolved_at']}")
        + (f" · *escalated:* {payload['escalated_at']}" if payload["notice"] == "escalated" else ""),
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
    run_id = {"opened": payload.get("opened_run_id"), "escalated": payload.get("escalated_run_id")}.get(
        payload["notice"], payload.get("resolved_run_id")
    )
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


def _scrub(sink: Sink, text: str) -> str:
    scrub = getattr(sink, "scrub", None)
    return scrub(text) if callable(scrub) else redact(text)


def _attempt(
    sink: Sink,
    payload: Mapping[str, Any],
    attempts: int,
    timeout: float,
    sleep: Callable[[float], None],
    remaining: Callable[[], float],
) -> tuple[int, str | None]:
    """Tries up to `attempts` times while time remains; returns how many were made and the last error (None
    when sent). No attempt waits longer than the time left before the tick's deadline."""
    error: str | None = None
    made = 0
    for attempt in range(1, attempts + 1):
        left = remaining()
        if left <= 0:
            return made, error or "delivery deadline of this tick reached; retried next tick"
        made = attempt
        try:
            sink.send(payload, min(timeout, left))
            return attempt, None
        except SinkError as failure:
            error = _scrub(sink, str(failure))
        except Exception as failure:  # a sink must never crash the sensor, whatever it raises
            error = _scrub(sink, f"{type(failure).__name__}: {failure}")[:300]
        if attempt < attempts:
            pause = BACKOFF_SECONDS * 2 ** (attempt - 1)
            if pause >= remaining():
                break
            sleep(pause)
    return made, error


def _local_first(sink: Sink) -> int:
    return 0 if isinstance(sink, JsonLinesFile) else 1


def deliver_pending(
    warehouse: Warehouse,
    sinks: Sequence[Sink],
    attempts: int,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    families: Sequence[str] | None = None,
    deadline_seconds: float = DEADLINE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Delivered:
    """Sends every pending notice to each sink still owed it, recording each outcome as it goes.

    Sink by sink, local files first, each getting its notices oldest first: a webhook that hangs cannot
    keep a notice from the file. Within a sink, an escalation or recovery waits until the sink has received
    the notices before it, so a sink never sees them out of order; and once a sink fails a notice, it is
    skipped for the rest of the tick (its notices stay pending for the next one). No attempt starts after
    `deadline_seconds`, nor waits past it. A pending sink no longer configured is marked `dropped`: there is
    nowhere left to send it. `families` limits it to the notices of one sensor, so two sensors never send
    the same notice at once.
    """
    started = clock()

    def remaining() -> float:
        return deadline_seconds - (clock() - started)

    notices = pending_notices(warehouse, families)
    deliveries = [{name: dict(state) for name, state in notice.delivery.items()} for notice in notices]
    outcome = Delivered()
    configured = {sink.name for sink in sinks}
    for notice, delivery in zip(notices, deliveries, strict=True):
        gone = [name for name in notice.pending_sinks() if name not in configured]
        for name in gone:
            delivery[name].update(status="dropped", at=datetime.now(UTC).isoformat())
        if gone:
            save_delivery(warehouse, notice, delivery)
    for sink in sorted(sinks, key=_local_first):
        for notice, delivery in zip(notices, deliveries, strict=True):
            state = delivery.get(sink.name)
            if state is None or state.get("status") != "pending":
                continue
            made, error = _attempt(sink, notice.alert.payload(notice.kind), attempts, timeout, sleep, remaining)
            if made == 0:
                break  # the tick's deadline: nothing more is tried, anywhere
            state["attempts"] = int(state.get("attempts", 0)) + made
            if error is None:
                state.update(status="delivered", at=datetime.now(UTC).isoformat())
                state.pop("error", None)
                outcome.sent += 1
            else:
                state["error"] = error
                outcome.failed += 1
                outcome.errors.append(f"{sink.name}: {error}")
            save_delivery(warehouse, notice, delivery)
            if error is not None:
                break  # the sink is failing: the rest of its notices (a later one of the same alert too) wait
        if remaining() <= 0:
            break
    outcome.still_pending = sum(
        1 for delivery in deliveries for state in delivery.values() if state.get("status") == "pending"
    )
    return outcome
