"""Retry rules at the edges, against a scripted vendor on loopback: Retry-After 0 and absurd, the vendor's
own word on retrying, OAuth refresh before expiry, nothing secret in the call log, and a real next action
once a vendor outage outlasts every retry."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integration_assets.core.access import Operation
from integration_assets.core.errors import Category, IntegrationError, after_retries, next_scheduled_sync
from integration_assets.core.policies import SYNC_CRON
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets_tests.testing.sandbox import put_faults
from integration_sandbox.server import Sandbox


class Script:
    """Answers requests in order from a list of (status, headers); then 200 with an empty list."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers, self.seen = list(answers), []


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append((time.monotonic(), self.path, dict(self.headers)))
            status, headers = script.answers.pop(0) if script.answers else (200, {})
            body = json.dumps({"error": "scripted"} if status >= 400 else {"object": "list", "data": []}).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()


def _zendesk(url: str):
    connection = ZendeskResource(base_url=url, email="a@b.example", api_token="secret-token", backoff_base_s=0.01)
    return connection.client("support_source", seed=1)


def test_retry_after_zero_retries_at_once(scripted) -> None:
    url, script = scripted
    script.answers = [(429, {"Retry-After": "0"}), (200, {})]
    _zendesk(url).call(Operation.READ, "users", "GET", "/api/v2/users.json")
    (first, *_), (second, *_) = script.seen
    assert second - first < 0.5


def test_an_absurd_retry_after_fails_now_instead_of_hanging(scripted) -> None:
    url, script = scripted
    script.answers = [(429, {"Retry-After": "86400"})]
    started = time.monotonic()
    with pytest.raises(IntegrationError) as raised:
        _zendesk(url).call(Operation.READ, "users", "GET", "/api/v2/users.json")
    assert time.monotonic() - started < 2
    assert raised.value.category == Category.RATE_LIMITED and len(script.seen) == 1
    assert "asked to wait 86400 s" in raised.value.next_action


def test_stripe_should_retry_false_is_obeyed_and_true_is_retried(scripted) -> None:
    url, script = scripted
    stripe = StripeResource(base_url=url, api_key="sk_test_x", backoff_base_s=0.01).client("billing_source")
    script.answers = [(503, {"Stripe-Should-Retry": "false"})]
    with pytest.raises(IntegrationError):
        stripe.call(Operation.READ, "customers", "GET", "/v1/customers")
    assert len(script.seen) == 1
    script.seen.clear()
    script.answers = [(409, {"Stripe-Should-Retry": "true"}), (200, {})]
    stripe.call(Operation.READ, "customers", "GET", "/v1/customers")
    assert len(script.seen) == 2


def test_retries_stop_at_the_attempt_bound(scripted) -> None:
    url, script = scripted
    script.answers = [(503, {})] * 10
    connection = ZendeskResource(
        base_url=url, email="a@b.example", api_token="t0ken", max_attempts=4, backoff_base_s=0.01
    )
    with pytest.raises(IntegrationError) as raised:
        connection.client("support_source").call(Operation.READ, "users", "GET", "/api/v2/users.json")
    assert len(script.seen) == 4 and raised.value.attempts == 4


def test_oauth_tokens_are_refreshed_before_they_expire(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  token_ttl_s: 2\n")
    connection = HubSpotResource(
        base_url=sandbox.url("hubspot"),
        oauth_refresh_token="refresh-sandbox",
        oauth_client_id="sandbox-client",
        oauth_client_secret="sandbox-secret",
    )
    client = connection.client("crm_source")
    seen_tokens = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        answer = client.call(Operation.READ, "contacts", "GET", "/crm/v3/objects/contacts", params={"limit": 1})
        assert answer.status == 200
        seen_tokens.add(client.credential.access_token)
        assert client.credential.expires_at > time.time()
        time.sleep(0.3)
    assert len(seen_tokens) >= 2, "a new token was minted before the old one expired"
    assert all(call.status == 200 for call in client.call_log.drain()), "no call met an expired token"


def test_the_call_log_holds_no_secret_and_no_personal_data(sandbox: Sandbox) -> None:
    client = HubSpotResource(base_url=sandbox.url("hubspot"), access_token="pat-sandbox").client("crm_source")
    with pytest.raises(IntegrationError) as raised:
        client.call(
            Operation.READ,
            "contacts",
            "GET",
            "/crm/v3/objects/contacts/{record_id}",
            path_params={"record_id": "someone@example.org"},
            params={"idProperty": "email"},
        )
    assert raised.value.category == Category.NOT_FOUND
    rows = [json.dumps(call.as_row(), default=str) for call in client.call_log.drain()]
    assert rows and all("someone@example.org" not in row and "pat-sandbox" not in row for row in rows)
    assert "someone@example.org" not in str(raised.value)


def test_a_zendesk_rate_limit_is_read_from_its_documented_errors_list(sandbox: Sandbox) -> None:
    """Zendesk's 429 body is the `Errors` list its document declares: the error names its code and detail."""
    put_faults(sandbox, "zendesk:\n  routes:\n    'GET /api/v2/users/{id}': {rates: {429: 1.0}}\n")
    connection = ZendeskResource(
        base_url=sandbox.url("zendesk"),
        email="admin@sandbox.test",
        api_token="zendesk-sandbox",
        max_attempts=1,
        backoff_base_s=0.01,
    )
    with pytest.raises(IntegrationError) as raised:
        connection.client("support_source").call(Operation.READ, "users", "GET", "/api/v2/users/370000001.json")
    assert raised.value.category == Category.RATE_LIMITED and raised.value.vendor_code == "TooManyRequests"
    assert raised.value.message == "Number of allowed API requests per minute exceeded"


def test_a_whole_run_outage_ends_with_a_real_next_action(scripted) -> None:
    """Every attempt failed (503s, then a vendor that no longer answers at all): the error that reaches a person
    says what to look at and when the next scheduled sync tries, never "none: retried"."""
    url, script = scripted
    script.answers = [(503, {})] * 10
    connection = ZendeskResource(
        base_url=url, email="a@b.example", api_token="t0ken", max_attempts=3, backoff_base_s=0.01
    )
    with pytest.raises(IntegrationError) as raised:
        connection.client("support_source").call(Operation.READ, "users", "GET", "/api/v2/users.json")
    with socket.socket() as probe:  # a port nothing listens on: connection refused, every attempt
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    gone = ZendeskResource(base_url=closed, email="a@b.example", api_token="t0ken", max_attempts=2, backoff_base_s=0.01)
    with pytest.raises(IntegrationError) as unreachable:
        gone.client("support_source").call(Operation.READ, "users", "GET", "/api/v2/users.json")
    for error in (raised.value, unreachable.value):
        assert error.category == Category.TRANSIENT and error.attempts > 1
        action = error.next_action
        assert not action.startswith("none") and "retried with backoff" not in action
        assert "status page" in action and f"`{SYNC_CRON}`" in action and " UTC " in action
        assert f"Next action: {action}." in str(error)


def test_the_next_scheduled_sync_is_named_by_its_time() -> None:
    assert SYNC_CRON == "0 * * * *"  # the wording below is for the hourly cron the project ships
    assert next_scheduled_sync(datetime(2026, 12, 7, 0, 41, 5, tzinfo=UTC)) == "at 01:00 UTC (hourly, `0 * * * *`)"
    assert next_scheduled_sync(datetime(2026, 12, 7, 23, 0, 0, tzinfo=UTC)) == "at 00:00 UTC (hourly, `0 * * * *`)"
    limited = after_retries(Category.RATE_LIMITED, "none: paced and retried; if it persists, lower the request budget")
    assert "rate limit" in limited and "if it persists, lower the request budget" in limited
    assert "none:" not in limited
