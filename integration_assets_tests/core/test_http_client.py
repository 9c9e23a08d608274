"""ApiClient against the sandbox over real HTTP: what is retried, what fails fast, what is logged."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from dagster import build_init_resource_context

from integration_assets.core.access import Operation, load_policy
from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.http import check_base_url
from integration_assets.core.pacing import RequestBudget
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets_tests.testing.sandbox import put_faults
from integration_sandbox.server import Sandbox

CONTACTS = "/crm/v3/objects/{object_type}"


def hubspot(sandbox: Sandbox, token: str = "pat-sandbox", **settings) -> HubSpotResource:
    return HubSpotResource(base_url=sandbox.url("hubspot"), access_token=token, **settings)


def stats(sandbox: Sandbox, vendor: str) -> dict[str, int]:
    return requests.get(f"{sandbox.url(vendor)}/__sandbox__/stats", timeout=5).json()[vendor]


def list_contacts(client, **params):
    return client.call(
        Operation.READ, "contacts", "GET", CONTACTS, path_params={"object_type": "contacts"}, params=params
    )


def test_transient_faults_are_retried_and_every_attempt_is_logged(sandbox: Sandbox) -> None:
    put_faults(sandbox, "seed: 3\nhubspot:\n  rates: {500: 0.2, 502: 0.1, 503: 0.1, reset: 0.1, malformed: 0.1}\n")
    fast = {"max_attempts": 10, "backoff_base_s": 0.001, "backoff_cap_s": 0.01}
    client = hubspot(sandbox, **fast).client("crm_source", run_id="r1", seed=1)
    for _ in range(30):
        assert list_contacts(client, limit=5).status == 200
    served = stats(sandbox, "hubspot")
    faults = sum(v for k, v in served.items() if k.startswith("fault:"))
    logged = client.call_log.drain()
    assert faults > 0
    assert len(logged) == served["requests"] == 30 + faults
    assert sum(1 for c in logged if c.error_category == "transient") == faults
    assert all(c.run_id == "r1" and c.endpoint == "/crm/v3/objects/contacts" and c.system == "crm" for c in logged)
    assert {c.attempt for c in logged} > {1}


@pytest.mark.parametrize(
    ("token", "category", "status", "action"),
    [
        ("pat-unknown", Category.AUTH_INVALID, 401, "check HUBSPOT_ACCESS_TOKEN"),
        ("pat-expired", Category.AUTH_EXPIRED, 401, "refresh or rotate HUBSPOT_ACCESS_TOKEN"),
        ("pat-deals-only", Category.PERMISSION_DENIED, 403, "grant scope crm.objects.contacts.read"),
    ],
)
def test_auth_failures_fail_fast_with_their_next_action(sandbox, token, category, status, action) -> None:
    put_faults(
        sandbox,
        """
hubspot:
  credentials:
    - {token: pat-expired, expires_in_s: 0}
    - {token: pat-deals-only, scopes: [crm.objects.deals.read]}
""",
    )
    client = hubspot(sandbox, token=token).client("crm_source", seed=1)
    with pytest.raises(IntegrationError) as raised:
        list_contacts(client)
    error = raised.value
    assert (error.category, error.status, error.retryable, error.attempts) == (category, status, False, 1)
    assert action in error.next_action
    assert error.request_id and error.resource.system == "crm"
    assert stats(sandbox, "hubspot")["requests"] == 1, "never retried"
    assert token not in str(error) and "pat-" not in error.message


def test_retry_after_is_honoured_on_zendesk_429(sandbox: Sandbox) -> None:
    put_faults(sandbox, "seed: 4\nzendesk:\n  rates: {429: 0.5}\n")
    connection = ZendeskResource(
        base_url=sandbox.url("zendesk"), email="admin@sandbox.test", api_token="zendesk-sandbox"
    )
    client = connection.client("support_source", seed=2)
    for _ in range(3):
        client.call(Operation.READ, "users", "GET", "/api/v2/users.json", params={"page[size]": 1})
    logged = client.call_log.drain()
    assert [c.status for c in logged].count(200) == 3
    limited = [i for i, c in enumerate(logged) if c.status == 429]
    assert limited, "the sandbox answered 429"
    for index in limited:
        assert logged[index].error_category == "rate_limited"
        waited = (logged[index + 1].called_at - logged[index].called_at).total_seconds()
        assert waited >= 1.0, "Zendesk said Retry-After: 1"


def test_budget_paces_under_the_hubspot_limit_without_429s(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  rate_limit: {requests: 20, per_seconds: 1}\n")
    client = hubspot(sandbox).client("crm_source", seed=1)
    client.budget = RequestBudget(None, 1.0)  # learnt from X-HubSpot-RateLimit-Max on the first answer
    for _ in range(45):
        list_contacts(client, limit=1)
    served = stats(sandbox, "hubspot")
    assert served.get("status:429", 0) == 0
    assert client.budget.limit == 20 and client.budget.waited_s > 1.0


@pytest.mark.parametrize(
    ("key", "per_second"),
    [("sk_live_x", 100), ("rk_live_x", 100), ("sk_test_x", 25), ("rk_test_x", 25), ("not_a_stripe_key", 25)],
)
def test_the_stripe_budget_follows_the_key_mode(key: str, per_second: int) -> None:
    """Stripe allows 100 requests/s with a live key and 25 in test mode: a live account paced as a test one
    would take four times as long to sync."""
    client = StripeResource(base_url="https://api.stripe.com", api_key=key).client("billing_source")
    assert client.budget.limit == per_second
    unpaced = StripeResource(
        base_url="https://api.stripe.com", api_key=key, requests_per_second=None, live_requests_per_second=None
    )
    assert unpaced.client("billing_source").budget.limit is None


def test_a_call_outside_the_access_policy_is_blocked_before_sending(sandbox: Sandbox) -> None:
    client = hubspot(sandbox).client("crm_source")
    with pytest.raises(IntegrationError) as raised:
        client.call(
            Operation.UPDATE,
            "contacts",
            "PATCH",
            CONTACTS + "/{id}",
            path_params={"object_type": "contacts", "id": "1"},
            json_body={"properties": {}},
        )
    assert raised.value.category == Category.PERMISSION_DENIED
    assert "access_policy.yaml in your INTEGRATION_CONFIG_DIR folder" in raised.value.next_action
    assert stats(sandbox, "hubspot").get("requests", 0) == 0
    assert load_policy().connectors["crm_source"].permits("contacts", Operation.READ)


def test_rejected_values_are_not_retried_and_name_the_parameter(sandbox: Sandbox) -> None:
    client = StripeResource(base_url=sandbox.url("stripe"), api_key="sk_test_sandbox").client("billing_source")
    with pytest.raises(IntegrationError) as raised:
        client.call(Operation.READ, "customers", "GET", "/v1/customers", params={"limit": 1000})
    assert raised.value.category == Category.REJECTED_VALUE and raised.value.attempts == 1
    assert "limit" in raised.value.next_action


def test_links_to_another_host_are_not_followed(sandbox: Sandbox) -> None:
    client = hubspot(sandbox).client("crm_source")
    with pytest.raises(IntegrationError, match="another host"):
        client.call(Operation.READ, "contacts", "GET", CONTACTS, url="http://198.51.100.7/crm/v3/objects/contacts")


def test_certificates_are_always_verified(tmp_path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = HubSpotResource(
            base_url=f"https://127.0.0.1:{server.server_address[1]}", access_token="pat-x", max_attempts=1
        )
        with pytest.raises(IntegrationError) as raised:
            list_contacts(connection.client("crm_source"))
        assert "certificate" in raised.value.message
    finally:
        server.shutdown()


# ------------------------------------------------------------------------------------------ base URLs


@pytest.mark.parametrize(
    ("resource", "variable"),
    [
        (lambda url: HubSpotResource(base_url=url, access_token="pat-x"), "HUBSPOT_BASE_URL"),
        (lambda url: StripeResource(base_url=url, api_key="sk_test_x"), "STRIPE_BASE_URL"),
        (lambda url: ZendeskResource(base_url=url, email="a@b.test", api_token="t"), "ZENDESK_BASE_URL"),
    ],
)
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://api.hubapi.com", "in clear"),
        ("http://10.0.0.7:8701", "in clear"),
        ("ftp://api.hubapi.com", "not a base URL"),
        ("api.hubapi.com", "not a base URL"),
        (" https://api.hubapi.com", "whitespace"),
        ("https://user:pw@api.hubapi.com", "no credentials"),
    ],
)
def test_an_unsafe_base_url_is_refused_at_resource_init(resource, variable, url, problem) -> None:
    """`https` unless the host is this machine: a token must not cross a network in clear."""
    connection = resource(url)
    with pytest.raises(ValueError, match=problem) as raised:
        connection.setup_for_execution(build_init_resource_context())
    assert variable in str(raised.value) and "user:pw" not in str(raised.value)
    with pytest.raises(ValueError, match=variable):
        connection.client("crm_source")


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://api.hubapi.com/", "https://api.hubapi.com"),
        ("https://proxy.example/hubspot//", "https://proxy.example/hubspot"),
        ("http://127.0.0.1:8701/", "http://127.0.0.1:8701"),
        ("http://localhost:8701", "http://localhost:8701"),
        ("http://[::1]:8701", "http://[::1]:8701"),
        ("http://127.9.9.9", "http://127.9.9.9"),
    ],
)
def test_https_and_loopback_base_urls_are_accepted_without_trailing_slash(url: str, normalized: str) -> None:
    assert check_base_url(url, "HUBSPOT_BASE_URL") == normalized
    connection = HubSpotResource(base_url=url, access_token="pat-x")
    connection.setup_for_execution(build_init_resource_context())
    assert connection.client("crm_source").base_url == normalized


def test_a_base_url_with_a_path_prefix_is_routed_below_it(sandbox: Sandbox) -> None:
    """A proxy prefix is not part of the vendor's route: the table is matched below it."""
    client = hubspot(sandbox).client("crm_source")
    client.base_url += "/prefix"
    with pytest.raises(IntegrationError) as raised:  # the sandbox has no such prefix: its 404 proves it was sent
        list_contacts(client, limit=1)
    assert raised.value.category == Category.NOT_FOUND


# ------------------------------------------------------------------------------------------ OAuth refresh


class _Redirecting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(307)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data?token=abc")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


def test_the_oauth_token_refresh_does_not_follow_a_redirect() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Redirecting.hits = []
    try:
        connection = HubSpotResource(
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            oauth_refresh_token="refresh-secret",
            oauth_client_id="client",
            oauth_client_secret="client-secret",
            max_attempts=1,
        )
        with pytest.raises(IntegrationError) as raised:
            list_contacts(connection.client("crm_source"))
    finally:
        server.shutdown()
    error = raised.value
    assert error.category == Category.PERMISSION_DENIED and error.status == 307
    assert "redirecting to http://169.254.169.254/latest/meta-data; not followed" in error.message
    assert "token=abc" not in str(error) and "secret" not in str(error)
    assert _Redirecting.hits == ["/oauth/v1/token"], "only the token endpoint was asked, once; nothing else"


# ------------------------------------------------------------------------------------------ odd JSON


@contextmanager
def _serving(body: bytes) -> Iterator[tuple[HubSpotResource, list[str]]]:
    """A loopback server answering every GET with `body` (200, JSON), as a HubSpot connection to it, and the
    paths it was asked for."""
    asked: list[str] = []

    class _Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield HubSpotResource(base_url=f"http://127.0.0.1:{server.server_address[1]}", access_token="t"), asked
    finally:
        server.shutdown()


# a contacts page whose second record holds an escaped lone surrogate: valid JSON, no valid text
LONE_SURROGATE_PAGE = (
    b'{"results": [{"id": "1", "properties": {"firstname": "Ada"}},'
    b' {"id": "2", "properties": {"firstname": "\\ud800 Grace"}}], "paging": null}'
)
# nested 1,100 deep: orjson refuses past 1,024, Python's parser runs out of stack
DEEP_PAGE = b'{"results": ' + b"[" * 1100 + b"]" * 1100 + b', "paging": null}'


def test_a_lone_surrogate_quarantines_its_record_not_the_page() -> None:
    """orjson refuses such a page whole; the client reads it, and only the record that cannot be stored is held
    back by the warehouse's screening (`unstorable_payload`)."""
    from integration_assets.core.warehouse.rows import RawRow, screen

    with _serving(LONE_SURROGATE_PAGE) as (connection, _):
        body = list_contacts(connection.client("crm_source")).body
    assert [record["id"] for record in body["results"]] == ["1", "2"]
    screened = screen([RawRow(id=r["id"], version=1, payload=r) for r in body["results"]])
    assert [row.id for row in screened.rows] == ["1"]
    assert [(held.id, held.reason_code) for held in screened.rejected] == [("2", "unstorable_payload")]


def test_an_answer_nested_too_deep_fails_once_logged_and_not_retried() -> None:
    """The same bytes fail every time: a vendor contract problem (schema drift), not a transient fault; the
    attempt is in the call log, and no RecursionError escapes the client."""
    with _serving(DEEP_PAGE) as (connection, asked):
        client = connection.client("crm_source")
        with pytest.raises(IntegrationError) as raised:
            list_contacts(client)
    assert raised.value.category == Category.SCHEMA_DRIFT and not raised.value.retryable
    assert raised.value.status == 200 and "nested deeper" in raised.value.message
    assert len(asked) == 1
    assert [(c.attempt, c.error_category) for c in client.call_log.drain()] == [(1, "schema_drift")]


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "x-http-method", "X-METHOD-OVERRIDE"])
def test_a_method_override_header_is_refused_before_sending(sandbox: Sandbox, header: str) -> None:
    """A GET the route table allows must not act as a DELETE on a server that honours the override."""
    client = hubspot(sandbox).client("crm_source")
    before = stats(sandbox, "hubspot").get("requests", 0)
    with pytest.raises(IntegrationError) as raised:
        client.call(
            Operation.READ,
            "contacts",
            "GET",
            CONTACTS,
            path_params={"object_type": "contacts"},
            headers={header: "DELETE"},
        )
    assert raised.value.category == Category.PERMISSION_DENIED and "blocked before sending" in raised.value.message
    assert stats(sandbox, "hubspot").get("requests", 0) == before
    assert client.call_log.drain() == []
