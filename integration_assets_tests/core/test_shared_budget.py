"""The rate budget shared in Redis: processes drawing from one vendor account's budget, on the real Redis of
this machine (127.0.0.1:6379) and, last, through the project's HubSpot client against the sandbox's limit."""

from __future__ import annotations

import math

import pytest
from dagster import EnvVar, build_resources

from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.resources import redis_url_setting
from integration_assets.core.shared_pacing import SharedRequestBudget
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets_tests.testing.budget_workers import (
    REDIS_URL,
    acquire_worker,
    budget,
    hold_worker,
    hubspot_lister,
    most_in_a_window,
    observe_worker,
    redis_prefix,
    run_together,
)
from integration_assets_tests.testing.sandbox import put_faults
from integration_sandbox.server import Sandbox


def allowed(limit: int) -> int:
    """What a budget lets through per window: the limit less its safety margin, as both budgets count it."""
    return max(1, int(limit * 0.985))


def test_three_workers_never_exceed_one_budget_and_use_most_of_it() -> None:
    limit, window_s, each = 20, 1.0, allowed(20)
    with redis_prefix("three") as prefix:
        reports = run_together(acquire_worker, [(prefix, limit, window_s, each)] * 3)
    grants = [grant for report in reports for grant in report]
    assert len(grants) == 3 * each
    assert most_in_a_window(grants, window_s) <= allowed(limit)
    # Used: of the requests the budget allowed over the time they took, the workers sent most.
    span = max(g.granted_by for g in grants) - min(g.asked_at for g in grants)
    capacity = allowed(limit) * (math.floor(span / window_s) + 1)
    assert len(grants) / capacity >= 2 / 3, f"{len(grants)} grants in {span:.2f} s"
    # Each worker alone would have sent its share in one burst: the other two held it back.
    assert span >= 2 * window_s


def test_a_limit_one_worker_observes_is_the_one_every_worker_paces_to() -> None:
    window_s = 1.0
    with redis_prefix("tighten") as prefix:
        (announced,) = run_together(observe_worker, [(prefix, 10, window_s)])
        reports = run_together(acquire_worker, [(prefix, 100, window_s, 10)] * 2)  # configured: 100 a second
        assert announced == 10 and budget(prefix, 100, 1.0).limit == 10
    grants = [grant for report in reports for grant in report]
    assert most_in_a_window(grants, window_s) <= allowed(10)
    span = max(g.granted_by for g in grants) - min(g.asked_at for g in grants)
    assert span >= 2 * window_s, "20 requests at 9 a window take three windows"

    with redis_prefix("widen") as prefix:
        run_together(observe_worker, [(prefix, 200, window_s)])
        reports = run_together(acquire_worker, [(prefix, 5, window_s, 20)] * 2)  # configured: 5 a second
    grants = [grant for report in reports for grant in report]
    assert most_in_a_window(grants, window_s) > allowed(5), "the announced limit widened the configured one"


def test_a_hold_after_a_429_holds_every_worker() -> None:
    hold_s = 1.5
    with redis_prefix("hold") as prefix:
        ((_, held_at),) = run_together(hold_worker, [(prefix, hold_s)])
        reports = run_together(acquire_worker, [(prefix, 100, 1.0, 1)] * 2)
    for (grant,) in reports:
        assert grant.granted_by - held_at >= hold_s - 0.01, "granted before the hold ended"


def test_the_in_process_budget_is_used_without_a_redis_url() -> None:
    for connection, connector in (
        (HubSpotResource(base_url="https://api.hubapi.com", access_token="pat-x", requests_per_10s=100), "crm_source"),
        (StripeResource(base_url="https://api.stripe.com", api_key="sk_test_x"), "billing_source"),
        (
            ZendeskResource(base_url="https://x.zendesk.com", email="a@b.test", api_token="t", requests_per_minute=7),
            "support_source",
        ),
    ):
        assert type(connection.client(connector).budget) is RequestBudget
    assert redis_url_setting() is None  # unset here: the Definitions keep each step's own budget


def test_the_code_location_shares_the_budget_once_the_environment_names_a_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read through EnvVar, like every other setting: the config keeps the variable's name, never its value."""
    from integration_assets.systems.crm import resource_from_env

    monkeypatch.setenv("INTEGRATION_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("HUBSPOT_BASE_URL", "https://api.hubapi.com")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-x")
    connection = resource_from_env()
    assert isinstance(connection.rate_budget_redis_url, EnvVar)
    assert connection.get_resource_definition().config_schema.default_value["rate_budget_redis_url"] == {
        "env": "INTEGRATION_REDIS_URL"
    }
    with build_resources({"hubspot": connection}) as started:
        assert isinstance(started.hubspot.client("crm_source").budget, SharedRequestBudget)
    monkeypatch.delenv("INTEGRATION_REDIS_URL")
    with build_resources({"hubspot": resource_from_env()}) as started:
        assert type(started.hubspot.client("crm_source").budget) is RequestBudget


def test_the_budget_key_names_the_account_never_its_credential() -> None:
    def key(token: str, base_url: str = "https://api.hubapi.com") -> str:
        connection = HubSpotResource(base_url=base_url, access_token=token, rate_budget_redis_url=REDIS_URL)
        shared = connection.client("crm_source").budget
        assert isinstance(shared, SharedRequestBudget)
        return shared.sent_key

    assert key("pat-na1-secret") == key("pat-na1-secret")
    assert key("pat-na1-secret") != key("pat-na1-other") != key("pat-na1-secret", "https://eu.example.test")
    assert "secret" not in key("pat-na1-secret") and key("pat-na1-secret").startswith("integration_assets:rate_budget")
    zendesk = [
        ZendeskResource(
            base_url="https://acme.zendesk.com", email=email, api_token=token, rate_budget_redis_url=REDIS_URL
        )
        .client("support_source")
        .budget
        for email, token in (("a@acme.test", "one"), ("b@acme.test", "two"))
    ]
    assert zendesk[0].sent_key == zendesk[1].sent_key, "Zendesk limits the account, whichever agent calls"


def test_an_unreachable_redis_fails_the_first_request_naming_its_host_not_its_password() -> None:
    connection = HubSpotResource(
        base_url="https://api.hubapi.com",
        access_token="pat-x",
        rate_budget_redis_url="redis://:hunter2-secret@127.0.0.1:1/0",
    )
    client = connection.client("crm_source")
    with pytest.raises(IntegrationError) as raised:
        client.budget.acquire()
    error = raised.value
    assert error.category == Category.TRANSIENT and error.resource.system == "crm"
    assert "redis://127.0.0.1:1" in str(error) and "INTEGRATION_REDIS_URL" in error.next_action
    assert "hunter2" not in str(error)


def test_a_malformed_redis_url_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match=r"INTEGRATION_REDIS_URL: .* is not a Redis URL"):
        SharedRequestBudget("http://127.0.0.1:6379", vendor="hubspot", account="x", limit=None)


def hubspot_429s(sandbox: Sandbox, redis_url: str | None, prefix: str) -> tuple[int, int]:
    """Two processes page through contacts under the sandbox's HubSpot limit: (429s, 200s) the sandbox served."""
    put_faults(sandbox, "hubspot:\n  rate_limit: {requests: 20, per_seconds: 1}\n")  # a fresh limiter
    reports = run_together(hubspot_lister, [(sandbox.url("hubspot"), redis_url, prefix, 40)] * 2)
    statuses = [status for report in reports for status in report]
    return statuses.count(429), statuses.count(200)


def test_two_workers_on_one_hubspot_account_get_no_429_with_the_shared_budget(sandbox: Sandbox) -> None:
    with redis_prefix("hubspot") as prefix:
        shared_429s, shared_200s = hubspot_429s(sandbox, REDIS_URL, prefix)
    own_429s, own_200s = hubspot_429s(sandbox, None, prefix)
    assert shared_200s == own_200s == 80
    assert own_429s > 0, "two budgets of their own each spend the whole limit"
    assert shared_429s == 0
