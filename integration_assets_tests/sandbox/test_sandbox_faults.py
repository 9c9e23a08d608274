"""Fault injection, drift, rate limits and reproducibility, seen over real HTTP on every vendor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests

from integration_assets.core.config import ConfigError
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults, sandbox_records
from integration_sandbox.clients import LIST_PATHS, session
from integration_sandbox.faults import load_profile, parse_profile
from integration_sandbox.server import Sandbox

VENDORS = ("hubspot", "stripe", "zendesk")


def outcome(call: Callable[[], requests.Response]) -> str:
    """What a client sees: a status, a reset, a timeout, or a body that is not JSON."""
    try:
        response = call()
    except requests.exceptions.ReadTimeout:
        return "timeout"
    except requests.exceptions.ConnectionError:
        return "reset"
    try:
        response.json()
    except ValueError:
        return "malformed"
    return str(response.status_code)


def list_page(sandbox: Sandbox, vendor: str, http: requests.Session | None = None, timeout: float = 5):
    http = http or session(vendor)
    return lambda: http.get(sandbox.url(vendor) + LIST_PATHS[vendor], timeout=timeout)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "reset", "malformed"])
def test_each_fault_kind_reaches_the_client(sandbox: Sandbox, vendor: str, kind: str) -> None:
    put_faults(sandbox, f"seed: 1\n{vendor}:\n  rates: {{'{kind}': 1.0}}\n")
    seen = outcome(list_page(sandbox, vendor))
    assert seen == kind
    other = next(v for v in VENDORS if v != vendor)
    assert outcome(list_page(sandbox, other)) == "200", "a fault for one vendor must not touch another"


@pytest.mark.parametrize("vendor", VENDORS)
def test_injected_errors_carry_the_vendors_envelope_and_request_id(sandbox: Sandbox, vendor: str) -> None:
    put_faults(sandbox, f"{vendor}:\n  rates: {{503: 1.0}}\n")
    response = list_page(sandbox, vendor)()
    assert response.status_code == 503
    body = response.json()
    envelope_key = {"hubspot": "status", "stripe": "error", "zendesk": "error"}[vendor]
    assert envelope_key in body
    request_id = {
        "hubspot": "X-HubSpot-Correlation-Id",
        "stripe": "Request-Id",
        "zendesk": "X-Zendesk-Request-Id",
    }
    assert response.headers.get(request_id[vendor])


def test_timeout_holds_the_response_past_the_client_timeout(sandbox: Sandbox) -> None:
    put_faults(sandbox, "default:\n  timeout_hold_s: 1.5\nstripe:\n  rates: {timeout: 1.0}\n")
    started = time.monotonic()
    assert outcome(list_page(sandbox, "stripe", timeout=0.3)) == "timeout"
    assert time.monotonic() - started < 1.4
    # A patient client gets the answer once the hold is over.
    assert outcome(list_page(sandbox, "stripe", timeout=5)) == "200"


def test_latency_is_added(sandbox: Sandbox) -> None:
    put_faults(sandbox, "zendesk:\n  latency_ms: [250, 300]\n")
    started = time.monotonic()
    assert outcome(list_page(sandbox, "zendesk")) == "200"
    assert time.monotonic() - started >= 0.25


def test_route_rates_fault_one_route_only(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  routes:\n    'GET /crm/v3/objects/deals': {rates: {500: 1.0}}\n")
    http = session("hubspot")
    base = sandbox.url("hubspot")
    assert http.get(f"{base}/crm/v3/objects/deals", timeout=5).status_code == 500
    assert http.get(f"{base}/crm/v3/objects/contacts", timeout=5).status_code == 200


def test_apply_then_drop_commits_the_write_but_the_client_sees_a_reset(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  writes: {apply_then_drop: 1.0}\n")
    http = session("hubspot")
    email = "dropped.response@sandbox-drill.test"
    seen = outcome(
        lambda: http.post(
            f"{sandbox.url('hubspot')}/crm/v3/objects/contacts",
            json={"properties": {"email": email, "firstname": "Drop"}},
            timeout=5,
        )
    )
    assert seen == "reset"
    stored = [c for c in sandbox_records(sandbox, "hubspot", "contacts") if c["properties"].get("email") == email]
    assert len(stored) == 1, "the server applied the write before dropping the response"
    # Reads are not dropped.
    assert outcome(list_page(sandbox, "hubspot")) == "200"


def test_drift_renames_removes_retypes_and_adds_fields(sandbox: Sandbox) -> None:
    put_faults(
        sandbox,
        """
hubspot:
  drift:
    contacts:
      rename: {firstname: first_name}
      remove: [lastname]
      retype: {hs_object_id: integer}
      add: {loyalty_tier: gold}
zendesk:
  drift:
    users:
      rename: {email: email_address}
      retype: {id: string}
""",
    )
    contact = session("hubspot").get(sandbox.url("hubspot") + LIST_PATHS["hubspot"], timeout=5).json()["results"][0]
    properties = contact["properties"]
    assert "firstname" not in properties and "first_name" in properties
    assert "lastname" not in properties
    assert isinstance(properties["hs_object_id"], int)
    assert properties["loyalty_tier"] == "gold"
    user = session("zendesk").get(sandbox.url("zendesk") + LIST_PATHS["zendesk"], timeout=5).json()["users"][0]
    assert "email" not in user and "email_address" in user
    assert isinstance(user["id"], str)
    # Removing the drift restores the vendor's shape.
    put_faults(sandbox, "{}")
    user = session("zendesk").get(sandbox.url("zendesk") + LIST_PATHS["zendesk"], timeout=5).json()["users"][0]
    assert "email" in user and isinstance(user["id"], int)


@pytest.mark.parametrize("vendor", VENDORS)
def test_profile_rate_limit_answers_429_once_the_window_is_full(sandbox: Sandbox, vendor: str) -> None:
    put_faults(sandbox, f"{vendor}:\n  rate_limit: {{requests: 5, per_seconds: 1}}\n")
    call = list_page(sandbox, vendor)
    statuses = [call().status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]
    time.sleep(1.05)
    assert call().status_code == 200


MIXED = """
seed: {seed}
default:
  rates: {{429: 0.1, 500: 0.1, 502: 0.05, 503: 0.05, reset: 0.1, malformed: 0.1}}
"""


def fault_sequence(dataset, seed: int, requests_per_vendor: int = 40) -> list[str]:
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox:
        put_faults(sandbox, MIXED.format(seed=seed))
        seen = []
        for vendor in VENDORS:
            http = session(vendor)
            seen += [outcome(list_page(sandbox, vendor, http)) for _ in range(requests_per_vendor)]
        return seen


def test_same_seed_replays_the_same_fault_sequence(dataset) -> None:
    first, second = fault_sequence(dataset, seed=11), fault_sequence(dataset, seed=11)
    assert first == second
    assert {"200", "429", "500", "reset", "malformed"} <= set(first)
    assert fault_sequence(dataset, seed=12) != first


def test_a_broken_profile_names_file_line_and_entry(tmp_path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("seed: 3\nstripe:\n  rates:\n    429: 0.2\n    504: 0.1\n")
    with pytest.raises(ConfigError) as error:
        load_profile(str(path))
    assert f"{path}:5: stripe.rates.504" in str(error.value)

    path.write_text("hubspot:\n  latency_ms: [500, 100]\n")
    with pytest.raises(ConfigError, match=r":2: hubspot.latency_ms"):
        load_profile(str(path))

    with pytest.raises(ConfigError, match=r"zendesk.rates: .*more than 1"):
        parse_profile("zendesk:\n  rates: {500: 0.7, reset: 0.6}\n")


def test_a_broken_profile_put_over_http_is_refused_and_the_old_one_kept(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  rates: {500: 1.0}\n")
    response = requests.put(f"{sandbox.url('stripe')}/__sandbox__/faults", data="hubspot:\n  ratez: {}\n", timeout=5)
    assert response.status_code == 400
    assert "hubspot.ratez" in response.json()["error"]
    assert list_page(sandbox, "hubspot")().status_code == 500


def test_stats_count_requests_and_injected_faults(sandbox: Sandbox) -> None:
    put_faults(sandbox, "stripe:\n  rates: {502: 1.0}\n")
    call = list_page(sandbox, "stripe")
    for _ in range(3):
        call()
    stats = requests.get(f"{sandbox.url('stripe')}/__sandbox__/stats", timeout=5).json()["stripe"]
    assert stats["fault:502"] == 3 and stats["status:502"] == 3
    assert json.dumps(stats)


@pytest.mark.parametrize(
    "query",
    ["", "a=1", "a=1&a=2&b=", "page%5Bsize%5D=100&page%5Bafter%5D=WzEwMF0", "q=a+b%2Bc&flag", "x=%E2%82%AC&&y=1"],
)
def test_query_parsing_agrees_with_the_standard_library(query: str) -> None:
    from urllib.parse import parse_qs

    from integration_sandbox.kit import parse_query

    assert parse_query(query) == parse_qs(query, keep_blank_values=True)
