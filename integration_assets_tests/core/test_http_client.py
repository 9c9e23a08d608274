"""ApiClient against the sandbox over real HTTP: what is retried, what fails fast, what is logged."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading

import pytest
import requests

from integration_assets.core.access import Operation, load_policy
from integration_assets.core.errors import Category, IntegrationError
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
    assert all(c.run_id == "r1" and c.endpoint == CONTACTS and c.system == "crm" for c in logged)
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
