"""The Zendesk sandbox answers as Zendesk's published OpenAPI document says: every route, success and error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_assets_tests.testing.conformance_cases import (
    Case,
    Outcome,
    describe,
    idle_waivers,
    run_cases,
    unjudged_routes,
)
from integration_assets_tests.testing.conformance_waivers import load_waivers
from integration_assets_tests.testing.sandbox import FREE_PORTS, sandbox_records
from integration_sandbox.credentials import ZENDESK_API_TOKEN, ZENDESK_EMAIL
from integration_sandbox.server import Sandbox

VENDOR = "zendesk"
TYPES = ("organizations", "users", "tickets")
RATE_LIMITED = "zendesk:\n  routes:\n    'PUT /api/v2/organizations/{id}': {rates: {429: 1.0}}\n"
NEW = {
    "organizations": {"organization": {"name": "Conformance Ltd", "domain_names": ["conformance.example.test"]}},
    "users": {"user": {"name": "Con Formance", "email": "conformance@example.test", "role": "end-user"}},
    "tickets": {
        "ticket": {
            "subject": "Conformance",
            "requester_id": "{users_id}",
            "comment": {"body": "Does the sandbox answer as documented?"},
        }
    },
}
CHANGED = {
    "organizations": {"organization": {"notes": "Reviewed", "organization_fields": {"health": "green"}}},
    "users": {"user": {"phone": "+1 555 010 0100"}},
    "tickets": {"ticket": {"status": "pending", "priority": "high"}},
}
UPSERTED = {
    "organizations": {"organization": {"name": "Conformance Upserted", "external_id": "conf-org-1"}},
    "users": {"user": {"name": "Con Upserted", "email": "upserted@example.test", "role": "end-user"}},
}


def _object_cases(t: str) -> list[Case]:
    base, singular = f"/api/v2/{t}", t.removesuffix("s")
    cases = [
        Case(f"{t}-list", "GET", base, 200, params={"page[size]": 3}, then=lambda b: {f"{t}_after": _after(b)}),
        Case(f"{t}-list-page-2", "GET", base, 200, params={"page[size]": 3, "page[after]": f"{{{t}_after}}"}),
        Case(f"{t}-list-by-offset", "GET", base, 200, params={"per_page": 3, "page": 2}),
        Case(f"{t}-show-many", "GET", f"{base}/show_many", 200, params={"ids": f"{{{t}_id}},{{{t}_other}}"}),
        Case(f"{t}-count", "GET", f"{base}/count", 200),
        Case(f"{t}-show", "GET", f"{base}/{{{t}_id}}", 200),
        Case(
            f"{t}-create",
            "POST",
            base,
            201,
            json=NEW[t],
            then=lambda b: {f"{t}_new": b[singular]["id"]},
        ),
        Case(f"{t}-update", "PUT", f"{base}/{{{t}_new}}", 200, json=CHANGED[t]),
        Case(f"{t}-delete", "DELETE", f"{base}/{{{t}_new}}", 204 if t != "users" else 200),
        Case(f"{t}-export", "GET", f"/api/v2/incremental/{t}", 200, params={"start_time": 0, "per_page": 3}),
        # documented error answers
        Case(f"{t}-show-unknown", "GET", f"{base}/999999999", 404),
        Case(f"{t}-list-bad-page-size", "GET", base, 400, params={"page[size]": 1000}),
        Case(f"{t}-list-bad-credentials", "GET", base, 401, auth="bad"),
    ]
    if t in UPSERTED:
        cases.append(Case(f"{t}-create-or-update", "POST", f"{base}/create_or_update", 201, json=UPSERTED[t]))
    if t != "organizations":
        export = f"/api/v2/incremental/{t}/cursor"
        cases += [
            Case(
                f"{t}-export-cursor",
                "GET",
                export,
                200,
                params={"start_time": 0, "per_page": 3},
                then=lambda b: {f"{t}_export_cursor": b["after_cursor"]},
            ),
            Case(f"{t}-export-cursor-page-2", "GET", export, 200, params={"cursor": f"{{{t}_export_cursor}}"}),
        ]
    return cases


def _after(body: Any) -> str:
    return body["meta"]["after_cursor"]


CASES: list[Case] = [
    Case("me", "GET", "/api/v2/users/me", 200),
    *(case for t in TYPES for case in _object_cases(t)),
    Case(
        "organizations-update-rate-limited",
        "PUT",
        "/api/v2/organizations/{organizations_id}",
        429,
        json=CHANGED["organizations"],
        faults=RATE_LIMITED,
    ),
]


def _credentials(kind: str) -> dict[str, Any]:
    if kind == "none":
        return {}
    return {"auth": (f"{ZENDESK_EMAIL}/token", ZENDESK_API_TOKEN if kind == "good" else "not-the-token")}


@pytest.fixture(scope="module")
def outcomes(dataset: Path) -> Iterator[tuple[Sandbox, dict[str, Outcome]]]:
    """Every case, once, against one sandbox."""
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox:
        values: dict[str, Any] = {}
        for t in TYPES:
            records = sandbox_records(sandbox, VENDOR, t)
            live = [r for r in records if r.get("status") != "deleted" and r.get("active") is not False]
            values[f"{t}_id"], values[f"{t}_other"] = live[0]["id"], live[1]["id"]
        yield sandbox, run_cases(sandbox, VENDOR, CASES, values, _credentials, load_waivers())


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_answer_conforms_to_the_published_document(outcomes, name: str) -> None:
    _, found = outcomes
    problem = describe(found[name])
    assert not problem, problem


def test_every_served_route_is_exercised_or_waived(outcomes) -> None:
    assert unjudged_routes(*outcomes, VENDOR) == []


def test_every_waiver_still_excuses_a_violation(outcomes) -> None:
    assert idle_waivers(*outcomes, VENDOR) == []


def test_a_rate_limited_organization_update_answers_the_documented_errors_list(outcomes) -> None:
    """The `Errors` schema requires nothing at its top, so the shape is asserted here as well."""
    _, found = outcomes
    answer = found["organizations-update-rate-limited"].answer
    errors = json.loads(answer.body)["errors"]
    assert [(e["code"], e["title"], e["status"]) for e in errors] == [("TooManyRequests", "Too Many Requests", "429")]
    assert int(answer.headers["retry-after"]) >= 1


def test_the_admin_login_is_a_user_with_an_id(outcomes) -> None:
    _, found = outcomes
    user = json.loads(found["me"].answer.body)["user"]
    assert isinstance(user["id"], int) and user["email"] == ZENDESK_EMAIL and user["role"] == "admin"
