"""Alerts on a real warehouse (DuckDB and PostgreSQL) and sinks against a real loopback HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.alerts import (
    Observation,
    apply_observations,
    ensure_alerts_table,
    load_alerts,
    pending_notices,
    problem_key_for_check,
)
from integration_assets.monitoring.sinks import (
    JsonLinesFile,
    SinkError,
    Webhook,
    configured_sinks,
    deliver_pending,
    host_allowed,
    slack_message,
)
from integration_assets_tests.testing.alerts import WebhookReceiver, read_lines, write_monitoring


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def observe(
    event_id: int,
    failing: bool,
    summary: str = "3 contacts missing",
    minutes: int = 0,
    severity: str = "CRITICAL",
    source: str = "",
    check: str = "completeness",
) -> Observation:
    return Observation(
        problem_key=problem_key_for_check("crm/contacts", check),
        kind="check",
        family="missing_records",
        failing=failing,
        event_id=event_id,
        at=T0 + timedelta(minutes=minutes),
        run_id=f"run-{event_id}",
        source=source,
        severity=severity,
        system="crm",
        asset="crm/contacts",
        check_name="completeness",
        summary=summary,
        evidence={"counts": {"missing": 3}, "sample_ids": ["101", "102"], "run_id": f"run-{event_id}"},
        next_action="Re-run the crm sync",
        owner="revenue-operations",
    )


@pytest.fixture
def warehouse(warehouse_url: str) -> Warehouse:
    store = Warehouse.from_url(warehouse_url)
    store.ensure_ops_tables()
    ensure_alerts_table(store)
    return store


def test_one_episode_per_problem_and_reprocessing_changes_nothing(warehouse: Warehouse) -> None:
    opened = apply_observations(warehouse, [observe(10, True)], ["jsonl:a"])
    assert [a.status for a in opened.opened] == ["open"]
    # still failing, with different evidence: remembered, not announced
    again = apply_observations(warehouse, [observe(11, True, "5 contacts missing", minutes=5)], ["jsonl:a"])
    assert again.opened == [] and again.resolved == []
    resolved = apply_observations(warehouse, [observe(12, False, minutes=10)], ["jsonl:a"])
    assert [a.status for a in resolved.resolved] == ["resolved"]
    # the same evaluations once more (a tick that crashed before saving its cursor)
    replay = apply_observations(warehouse, [observe(10, True), observe(11, True), observe(12, False)], ["jsonl:a"])
    assert (replay.opened, replay.resolved) == ([], [])

    rows = load_alerts(warehouse)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "resolved"
    assert row["summary"] == "3 contacts missing"  # the opening's evidence stays
    assert row["opened_at"] == T0 and row["resolved_at"] == T0 + timedelta(minutes=10)
    assert (row["opened_run_id"], row["resolved_run_id"], row["last_event_id"]) == ("run-10", "run-12", 12)
    assert row["open_delivery"] == {"jsonl:a": {"status": "pending", "attempts": 0}}
    assert row["evidence"]["sample_ids"] == ["101", "102"]

    # a new failure after recovery is a new episode
    reopened = apply_observations(warehouse, [observe(20, True, minutes=30)], ["jsonl:a"])
    assert len(reopened.opened) == 1
    assert [r["status"] for r in load_alerts(warehouse)] == ["resolved", "open"]


def test_latest_evaluation_in_a_batch_decides(warehouse: Warehouse) -> None:
    applied = apply_observations(warehouse, [observe(3, False), observe(1, True), observe(2, True)], [])
    assert applied.opened == [] and load_alerts(warehouse) == []
    applied = apply_observations(warehouse, [observe(4, False), observe(5, True)], [])
    assert len(applied.opened) == 1
    assert load_alerts(warehouse)[0]["pending"] is False  # no sink configured: nothing waits


def test_redaction_before_storage(warehouse: Warehouse) -> None:
    secret = observe(1, True, "sync for jane.doe@example.com failed with Bearer abc.def.ghi and sk_live_123456")
    apply_observations(warehouse, [secret], [])
    stored = json.dumps(load_alerts(warehouse), default=str)
    assert "jane.doe@example.com" not in stored and "abc.def.ghi" not in stored and "sk_live_123456" not in stored
    assert "j***@example.com" in stored


def test_delivery_retries_and_never_duplicates(warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: Path):
    lines = tmp_path / "alerts.jsonl"
    sinks = [JsonLinesFile(lines), Webhook(url=receiver.url, label="json:test")]
    names = [s.name for s in sinks]
    apply_observations(warehouse, [observe(1, True)], names)

    receiver.statuses = [500, 503, 500]  # down for the whole first round of attempts
    first = deliver_pending(warehouse, sinks, attempts=3, timeout=2, sleep=lambda s: None)
    assert (first.sent, first.failed, first.still_pending) == (1, 1, 1)
    assert len(read_lines(lines)) == 1 and receiver.bodies == []
    assert "HTTP 500" in load_alerts(warehouse)[0]["open_delivery"][sinks[1].name]["error"]

    # recovery while the webhook still owes the opening: the file gets it, the webhook waits for its turn
    apply_observations(warehouse, [observe(2, False, minutes=3)], names)
    receiver.statuses = [500, 500, 500]
    deliver_pending(warehouse, sinks, attempts=3, timeout=2, sleep=lambda s: None)
    assert [line["notice"] for line in read_lines(lines)] == ["opened", "resolved"]
    assert receiver.bodies == []

    receiver.statuses = [500]  # one more failure, then the retry inside the round gets through
    second = deliver_pending(warehouse, sinks, attempts=3, timeout=2, sleep=lambda s: None)
    assert second.still_pending == 0
    assert [body["notice"] for body in receiver.bodies] == ["opened", "resolved"]
    assert [line["notice"] for line in read_lines(lines)] == ["opened", "resolved"]
    row = load_alerts(warehouse)[0]
    assert row["pending"] is False
    assert row["open_delivery"][sinks[1].name]["status"] == "delivered"
    assert row["open_delivery"][sinks[1].name]["attempts"] == 8  # 3 + 3 failed rounds, then 2

    assert deliver_pending(warehouse, sinks, attempts=3, timeout=2).sent == 0
    assert len(receiver.bodies) == 2


def test_unreachable_webhook_and_removed_sink(warehouse: Warehouse, tmp_path: Path) -> None:
    closed = Webhook(url="http://127.0.0.1:9/hook?token=hunter2", label="json:closed")
    apply_observations(warehouse, [observe(1, True)], [closed.name, "jsonl:gone"])
    result = deliver_pending(warehouse, [closed], attempts=2, timeout=1, sleep=lambda s: None)
    assert result.failed == 1 and result.still_pending == 1
    delivery = load_alerts(warehouse)[0]["open_delivery"]
    assert "hunter2" not in json.dumps(delivery)
    assert delivery["jsonl:gone"]["status"] == "dropped"
    assert len(pending_notices(warehouse)) == 1
    assert pending_notices(warehouse, ["drift"]) == []


def test_alert_payload_shape_and_slack_format(warehouse: Warehouse, receiver: WebhookReceiver) -> None:
    slack = Webhook(url=receiver.url, label="slack:test", format="slack")
    plain = Webhook(url=receiver.url, label="json:test")
    apply_observations(warehouse, [observe(1, True, "contact ann@corp.example missing")], [slack.name, plain.name])
    deliver_pending(warehouse, [slack, plain], attempts=1, timeout=2)
    message, alert = receiver.bodies
    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith(":red_circle: CRITICAL: contact a***@corp.example missing")
    assert [block["type"] for block in message["blocks"]] == ["section", "section", "context"]
    facts = message["blocks"][1]["text"]["text"]
    assert "*Owner:* revenue-operations" in facts and "*Sample ids:* 101, 102" in facts
    assert "*Next action:* Re-run the crm sync" in facts

    assert alert["notice"] == "opened"
    assert {k: alert[k] for k in ("severity", "system", "asset", "check_name", "owner", "status")} == {
        "severity": "CRITICAL",
        "system": "crm",
        "asset": "crm/contacts",
        "check_name": "completeness",
        "owner": "revenue-operations",
        "status": "open",
    }
    assert alert["opened_at"] == T0.isoformat()
    assert alert["evidence"]["counts"] == {"missing": 3}
    assert alert["where"] == "crm/contacts · check completeness"

    resolved = slack_message({**alert, "notice": "resolved", "resolved_at": T0.isoformat()})
    assert resolved["text"].startswith(":white_check_mark: Resolved:")
    escalated = slack_message({**alert, "notice": "escalated", "escalated_at": T0.isoformat()})
    assert escalated["text"].startswith(":red_circle: Escalated to CRITICAL: contact a***@corp.example missing")
    assert "*escalated:*" in escalated["blocks"][1]["text"]["text"]


def test_configured_sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_monitoring(
        tmp_path / "monitoring.yaml",
        [
            {"kind": "jsonl", "path": "alerts.jsonl"},
            {"kind": "webhook", "url_env": "TEST_ALERT_HOOK", "format": "slack"},
        ],
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TEST_ALERT_HOOK", raising=False)
    assert [s.name for s in configured_sinks(load_monitoring(path))] == [f"jsonl:{tmp_path}/home/alerts.jsonl"]
    monkeypatch.setenv("TEST_ALERT_HOOK", "http://127.0.0.1:1/secret-path")
    names = [s.name for s in configured_sinks(load_monitoring(path))]
    assert names[1] == "webhook:slack:TEST_ALERT_HOOK" and "secret-path" not in "".join(names)


def test_escalation_announced_once_and_falls_silently(warehouse: Warehouse, tmp_path: Path) -> None:
    lines = tmp_path / "alerts.jsonl"
    sink = JsonLinesFile(lines)
    apply_observations(warehouse, [observe(1, True, "2 contacts missing", severity="WARNING")], [sink.name])
    deliver_pending(warehouse, [sink], attempts=1, timeout=1)
    assert [(line["notice"], line["severity"]) for line in read_lines(lines)] == [("opened", "WARNING")]

    worse = apply_observations(warehouse, [observe(2, True, "40 contacts missing", minutes=5)], [sink.name])
    assert [a.severity for a in worse.escalated] == ["CRITICAL"] and worse.opened == []
    deliver_pending(warehouse, [sink], attempts=1, timeout=1)
    notices = read_lines(lines)
    assert [(n["notice"], n["severity"]) for n in notices] == [("opened", "WARNING"), ("escalated", "CRITICAL")]
    assert (
        notices[1]["summary"] == "40 contacts missing"
        and notices[1]["escalated_at"] == (T0 + timedelta(minutes=5)).isoformat()
    )
    assert notices[1]["opened_at"] == T0.isoformat()  # the same episode, open since the first failure

    # stays critical, then falls back to a warning: no notice; the row keeps the current severity
    apply_observations(warehouse, [observe(3, True, minutes=6)], [sink.name])
    apply_observations(warehouse, [observe(4, True, minutes=7, severity="WARNING")], [sink.name])
    deliver_pending(warehouse, [sink], attempts=1, timeout=1)
    assert len(read_lines(lines)) == 2
    (row,) = load_alerts(warehouse)
    assert row["severity"] == "WARNING" and row["status"] == "open" and row["pending"] is False

    # rises again: announced again; then clears: one recovery
    assert len(apply_observations(warehouse, [observe(5, True, minutes=8)], [sink.name]).escalated) == 1
    apply_observations(warehouse, [observe(6, False, minutes=9)], [sink.name])
    deliver_pending(warehouse, [sink], attempts=1, timeout=1)
    assert [n["notice"] for n in read_lines(lines)] == ["opened", "escalated", "escalated", "resolved"]
    assert load_alerts(warehouse)[0]["pending"] is False


def test_escalation_before_the_opening_was_delivered_is_not_sent_twice(warehouse: Warehouse, tmp_path: Path) -> None:
    sink = JsonLinesFile(tmp_path / "alerts.jsonl")
    apply_observations(warehouse, [observe(1, True, severity="WARNING")], [sink.name])
    apply_observations(warehouse, [observe(2, True, minutes=1)], [sink.name])
    deliver_pending(warehouse, [sink], attempts=1, timeout=1)
    # the sink learns of the problem once, already at its current severity
    assert [(n["notice"], n["severity"]) for n in read_lines(sink.path)] == [("opened", "CRITICAL")]


def test_ids_of_another_instance_are_ordered_by_time(warehouse: Warehouse) -> None:
    """A reset instance (or SQLite → PostgreSQL) numbers its events afresh: a lower id is not a replay."""
    assert len(apply_observations(warehouse, [observe(900, True, source="instance-a")], []).opened) == 1
    # the old instance's evaluation seen again from the new one changes nothing (older than what was applied)
    assert apply_observations(warehouse, [observe(900, True, source="instance-b", minutes=-1)], []).unchanged == 1
    resolved = apply_observations(warehouse, [observe(3, False, minutes=5, source="instance-b")], [])
    assert len(resolved.resolved) == 1
    # within the new instance, ids order again: a replay of id 3 is a no-op, a later failure a new episode
    assert apply_observations(warehouse, [observe(3, False, minutes=5, source="instance-b")], []).unchanged == 1
    reopened = apply_observations(warehouse, [observe(4, True, minutes=6, source="instance-b")], [])
    assert len(reopened.opened) == 1
    rows = load_alerts(warehouse)
    assert [(r["status"], r["event_source"], r["last_event_id"]) for r in rows] == [
        ("resolved", "instance-b", 3),
        ("open", "instance-b", 4),
    ]


def test_webhook_secret_in_path_and_query_never_stored_nor_logged(warehouse: Warehouse) -> None:
    url = "http://127.0.0.1:9/services/T0AAA/B0BBB/xoxsecret?token=hunter22"  # a Slack-like URL, closed port
    closed = Webhook(url=url, label="slack:closed", format="slack")
    apply_observations(warehouse, [observe(1, True)], [closed.name])
    result = deliver_pending(warehouse, [closed], attempts=2, timeout=1, sleep=lambda s: None)
    assert result.failed == 1 and result.errors
    stored = json.dumps(load_alerts(warehouse), default=str) + json.dumps(result.errors)
    assert "127.0.0.1" in result.errors[0]  # still says where it failed
    for piece in ("/services/T0AAA", "T0AAA", "B0BBB", "xoxsecret", "hunter22", "token=", "services/"):
        assert piece not in stored, piece


def test_hanging_webhook_is_skipped_for_the_tick_and_the_file_gets_everything(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    hook = Webhook(url=receiver.url, label="json:slow")
    lines = tmp_path / "alerts.jsonl"
    sinks = [hook, JsonLinesFile(lines)]  # the webhook first in config: the file must not wait for it
    for n in range(4):
        problem = observe(n + 1, True, check=f"check_{n}")
        apply_observations(warehouse, [problem], [s.name for s in sinks])
    receiver.delay = 3  # longer than the timeout: every attempt times out
    started = time.monotonic()
    outcome = deliver_pending(warehouse, sinks, attempts=3, timeout=0.5, deadline_seconds=30)
    elapsed = time.monotonic() - started
    assert len(read_lines(lines)) == 4
    assert elapsed < 4, elapsed  # one notice's attempts (3 attempts of 0.5 s, and backoff), not four notices' worth
    assert (outcome.sent, outcome.failed, outcome.still_pending) == (4, 1, 4)
    attempts = sorted(row["open_delivery"][hook.name]["attempts"] for row in load_alerts(warehouse))
    assert attempts == [0, 0, 0, 3]  # skipped for the rest of the tick after its first failed notice


def test_delivery_stops_at_the_tick_deadline(warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: Path):
    hook = Webhook(url=receiver.url, label="json:slow")
    for n in range(6):
        apply_observations(warehouse, [observe(n + 1, True, check=f"check_{n}")], [hook.name])
    receiver.delay = 0.5  # slow but answering
    started = time.monotonic()
    outcome = deliver_pending(warehouse, [hook], attempts=3, timeout=5, deadline_seconds=1.2)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed  # bounded by the deadline (plus the request in flight), not 6 answers of 0.5 s
    assert 1 <= outcome.sent < 6 and outcome.sent + outcome.still_pending == 6
    receiver.delay = 0
    assert deliver_pending(warehouse, [hook], attempts=3, timeout=5).still_pending == 0
    # every notice reached it (one cut off by the deadline may have arrived twice: a timeout cannot tell)
    assert {body["problem_key"] for body in receiver.bodies} == {
        problem_key_for_check("crm/contacts", f"check_{n}") for n in range(6)
    }


# ----------------------------------------------------------------------------- outbound safety of webhooks

ALERT = {"notice": "opened", "severity": "CRITICAL", "summary": "s", "id": 1, "problem_key": "k"}


@pytest.mark.parametrize(
    ("url", "allowed", "problem"),
    [
        ("https://admin.internal/api/reset", ("hooks.slack.com",), "admin.internal is not in alerts.webhook_hosts"),
        ("https://hooks.slack.com.evil.test/x", ("hooks.slack.com",), "not in alerts.webhook_hosts"),
        ("https://example.com/hook", ("*.example.com",), "not in alerts.webhook_hosts"),  # the bare domain
        ("http://hooks.slack.com/services/x", ("hooks.slack.com",), "https is required"),
        ("file:///etc/passwd", ("hooks.slack.com",), "not an http(s) URL"),
    ],
)
def test_a_webhook_posts_only_to_an_allowed_host(url: str, allowed: tuple[str, ...], problem: str) -> None:
    """Refused before any connection: nothing to resolve, nothing sent."""
    with pytest.raises(SinkError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Webhook(url=url, label="json:t", allowed_hosts=allowed).send(ALERT, timeout=1)


def test_allowed_and_loopback_webhook_hosts(receiver: WebhookReceiver) -> None:
    assert host_allowed("hooks.slack.com", ["hooks.slack.com"]) and host_allowed("A.Example.com", ["*.example.com"])
    assert not host_allowed("example.com", ["*.example.com"]) and not host_allowed("xexample.com", ["*.example.com"])
    Webhook(url=receiver.url, label="json:t").send(ALERT, timeout=2)  # loopback: always, no list needed
    assert len(receiver.bodies) == 1


def test_configured_webhooks_carry_the_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_monitoring(tmp_path / "monitoring.yaml", [{"kind": "webhook", "url_env": "TEST_ALERT_HOOK"}])
    assert load_monitoring(path).alerts.webhook_hosts == []  # a copy without the key: loopback only
    config = yaml.safe_load(path.read_text())
    config["alerts"]["webhook_hosts"] = ["hooks.slack.com"]
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("TEST_ALERT_HOOK", "https://hooks.slack.com/services/T/B/x")
    (hook,) = configured_sinks(load_monitoring(path))
    assert isinstance(hook, Webhook) and hook.allowed_hosts == ("hooks.slack.com",) and hook.refusal() is None
    assert load_monitoring().alerts.webhook_hosts == ["hooks.slack.com"]  # the packaged default


class _Redirect(BaseHTTPRequestHandler):
    location = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(302)
        self.send_header("Location", type(self).location)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_redirect_is_not_followed_and_names_its_target(
    warehouse: Warehouse, receiver: WebhookReceiver
) -> None:
    _Redirect.location = receiver.url + "/admin?secret=s3cr3t"  # loopback too: only the redirect stops it
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = Webhook(url=f"http://127.0.0.1:{server.server_address[1]}/in", label="json:redirecting")
    try:
        apply_observations(warehouse, [observe(1, True)], [hook.name])
        result = deliver_pending(warehouse, [hook], attempts=2, timeout=2, sleep=lambda s: None)
    finally:
        server.shutdown()
    assert result.failed == 1 and receiver.bodies == [], "the redirect's target got nothing"
    assert f"HTTP 302: the webhook redirected to {receiver.url}/admin; not followed" in result.errors[0]
    assert "not followed" in result.errors[0] and "s3cr3t" not in json.dumps(load_alerts(warehouse), default=str)
