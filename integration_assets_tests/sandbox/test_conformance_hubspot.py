"""The HubSpot sandbox answers as HubSpot's published OpenAPI documents say: every route, success and error."""

from __future__ import annotations

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
from integration_sandbox.credentials import (
    HUBSPOT_ACCESS_TOKEN,
    HUBSPOT_CLIENT_ID,
    HUBSPOT_CLIENT_SECRET,
    HUBSPOT_REFRESH_TOKEN,
)
from integration_sandbox.server import Sandbox

VENDOR = "hubspot"
TYPES = ("contacts", "companies", "deals")
RATE_LIMITED = "hubspot:\n  routes:\n    'GET /crm/v3/objects/companies': {rates: {429: 1.0}}\n"
NEW_PROPERTIES = {
    "contacts": {"email": "conformance@example.test", "firstname": "Con", "lastname": "Formance"},
    "companies": {"name": "Conformance Ltd", "domain": "conformance.example.test"},
    "deals": {"dealname": "Conformance deal", "amount": "1200", "dealstage": "appointmentscheduled"},
}
CHANGED = {"contacts": {"lastname": "Formal"}, "companies": {"industry": "RETAIL"}, "deals": {"amount": "1300"}}
BATCH_PROPERTIES = {
    "contacts": {"email": "conformance.batch@example.test", "firstname": "Batch"},
    "companies": {"name": "Conformance Batch Ltd", "domain": "batch.example.test"},
    "deals": {"dealname": "Conformance batch deal", "amount": "900", "dealstage": "appointmentscheduled"},
}
UNKNOWN_ID = "999999999"


def _object_cases(t: str) -> list[Case]:
    base = f"/crm/v3/objects/{t}"
    return [
        Case(f"{t}-list", "GET", base, 200, params={"limit": 3}, then=lambda b, t=t: {f"{t}_after": _after(b)}),
        Case(f"{t}-list-page-2", "GET", base, 200, params={"limit": 3, "after": f"{{{t}_after}}"}),
        Case(f"{t}-list-archived", "GET", base, 200, params={"archived": "true", "limit": 3}),
        Case(f"{t}-get", "GET", f"{base}/{{{t}_id}}", 200),
        Case(
            f"{t}-get-properties",
            "GET",
            f"{base}/{{{t}_id}}",
            200,
            params={"properties": "hs_object_id,createdate", "associations": "companies"},
        ),
        Case(f"{t}-search", "POST", f"{base}/search", 200, json={"filterGroups": [], "limit": 3}),
        Case(
            f"{t}-search-page-2",
            "POST",
            f"{base}/search",
            200,
            json={"filterGroups": [], "limit": 3, "after": "3"},
        ),
        Case(f"{t}-batch-read", "POST", f"{base}/batch/read", 200, json={"inputs": [{"id": f"{{{t}_id}}"}]}),
        Case(
            f"{t}-batch-read-partial",
            "POST",
            f"{base}/batch/read",
            207,
            json={"inputs": [{"id": f"{{{t}_id}}"}, {"id": "999999999"}]},
        ),
        Case(
            f"{t}-create",
            "POST",
            base,
            201,
            json={"properties": NEW_PROPERTIES[t]},
            then=lambda b, t=t: {f"{t}_new": b["id"]},
        ),
        Case(f"{t}-update", "PATCH", f"{base}/{{{t}_new}}", 200, json={"properties": CHANGED[t]}),
        Case(f"{t}-delete", "DELETE", f"{base}/{{{t}_new}}", 204),
        Case(f"{t}-associations", "GET", f"/crm/v4/objects/{t}/{{{t}_linked}}/associations/{{{t}_to}}", 200),
        Case(f"{t}-properties", "GET", f"/crm/v3/properties/{t}", 200),
        # documented error answers
        Case(f"{t}-get-unknown", "GET", f"{base}/999999999", 404),
        Case(f"{t}-update-unknown", "PATCH", f"{base}/999999999", 404, json={"properties": CHANGED[t]}),
        Case(f"{t}-list-bad-limit", "GET", base, 400, params={"limit": "many"}),
        Case(f"{t}-search-bad-operator", "POST", f"{base}/search", 400, json=_bad_filter()),
        Case(f"{t}-list-bad-credentials", "GET", base, 401, auth="bad"),
    ]


def _batch_write_cases(t: str) -> list[Case]:
    """Batch create, update, upsert and archive of a record the cases make, with their partial and bad answers."""
    base, new = f"/crm/v3/objects/{t}/batch", f"{{{t}_batch_new}}"
    not_a_list = {"inputs": "not a list"}
    return [
        Case(
            f"{t}-batch-create",
            "POST",
            f"{base}/create",
            201,
            json={"inputs": [{"properties": BATCH_PROPERTIES[t]}]},
            then=lambda b, t=t: {f"{t}_batch_new": b["results"][0]["id"]},
        ),
        Case(
            f"{t}-batch-update", "POST", f"{base}/update", 200, json={"inputs": [{"id": new, "properties": CHANGED[t]}]}
        ),
        Case(
            f"{t}-batch-update-partial",
            "POST",
            f"{base}/update",
            207,
            json={"inputs": [{"id": new, "properties": CHANGED[t]}, {"id": UNKNOWN_ID, "properties": CHANGED[t]}]},
        ),
        Case(
            f"{t}-batch-upsert", "POST", f"{base}/upsert", 200, json={"inputs": [{"id": new, "properties": CHANGED[t]}]}
        ),
        Case(
            f"{t}-batch-upsert-partial",
            "POST",
            f"{base}/upsert",
            207,
            json={"inputs": [{"id": new, "properties": CHANGED[t]}, {"id": UNKNOWN_ID, "properties": CHANGED[t]}]},
        ),
        Case(f"{t}-batch-archive", "POST", f"{base}/archive", 204, json={"inputs": [{"id": new}]}),
        # documented error answers
        Case(f"{t}-batch-create-not-a-list", "POST", f"{base}/create", 400, json=not_a_list),
        Case(f"{t}-batch-update-not-a-list", "POST", f"{base}/update", 400, json=not_a_list),
        Case(
            f"{t}-batch-upsert-repeated-id",
            "POST",
            f"{base}/upsert",
            400,
            json={"inputs": [{"id": UNKNOWN_ID, "properties": {}}, {"id": UNKNOWN_ID, "properties": {}}]},
        ),
        Case(f"{t}-batch-archive-too-many", "POST", f"{base}/archive", 400, json={"inputs": [{"id": "1"}] * 101}),
        Case(f"{t}-batch-create-bad-credentials", "POST", f"{base}/create", 401, json={"inputs": []}, auth="bad"),
    ]


def _after(body: Any) -> str:
    return body["paging"]["next"]["after"]


def _bad_filter() -> dict:
    return {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "ROUGHLY", "value": "1"}]}]}


CASES: list[Case] = [
    *(case for t in TYPES for case in _object_cases(t)),
    *(case for t in TYPES for case in _batch_write_cases(t)),
    Case(
        "contacts-batch-upsert-by-email-creates",
        "POST",
        "/crm/v3/objects/contacts/batch/upsert",
        200,
        json={"inputs": [{"id": "upserted@example.test", "idProperty": "email", "properties": {"firstname": "Up"}}]},
    ),
    Case(
        "contacts-batch-create-duplicate",
        "POST",
        "/crm/v3/objects/contacts/batch/create",
        409,
        json={"inputs": [{"properties": {"email": "{contacts_email}"}}]},
    ),
    Case(
        "contacts-create-duplicate",
        "POST",
        "/crm/v3/objects/contacts",
        409,
        json={"properties": {"email": "{contacts_email}"}},
    ),
    Case("pipelines", "GET", "/crm/v3/pipelines/deals", 200),
    Case("pipeline", "GET", "/crm/v3/pipelines/deals/default", 200),
    Case("pipeline-unknown", "GET", "/crm/v3/pipelines/deals/no-such-pipeline", 404),
    Case("companies-list-rate-limited", "GET", "/crm/v3/objects/companies", 429, faults=RATE_LIMITED),
    Case(
        "oauth-refresh",
        "POST",
        "/oauth/v1/token",
        200,
        form={
            "grant_type": "refresh_token",
            "client_id": HUBSPOT_CLIENT_ID,
            "client_secret": HUBSPOT_CLIENT_SECRET,
            "refresh_token": HUBSPOT_REFRESH_TOKEN,
        },
        auth="none",
        then=lambda b: {"oauth_token": b["access_token"]},
    ),
    Case(
        "oauth-refresh-bad-token",
        "POST",
        "/oauth/v1/token",
        400,
        form={
            "grant_type": "refresh_token",
            "client_id": HUBSPOT_CLIENT_ID,
            "client_secret": HUBSPOT_CLIENT_SECRET,
            "refresh_token": "no-such-refresh-token",
        },
        auth="none",
    ),
    Case("oauth-token-info", "GET", "/oauth/v1/access-tokens/{oauth_token}", 200, auth="none"),
    Case("oauth-token-info-unknown", "GET", "/oauth/v1/access-tokens/no-such-token", 404, auth="none"),
]


def _credentials(kind: str) -> dict[str, Any]:
    token = {"good": HUBSPOT_ACCESS_TOKEN, "bad": "pat-unknown"}.get(kind)
    return {"headers": {"Authorization": f"Bearer {token}"} if token else {}}


@pytest.fixture(scope="module")
def outcomes(dataset: Path) -> Iterator[tuple[Sandbox, dict[str, Outcome]]]:
    """Every case, once, against one sandbox: writes land on records the cases made themselves."""
    with Sandbox(dataset, ports=FREE_PORTS) as sandbox:
        values: dict[str, str] = {}
        live = {t: [r for r in sandbox_records(sandbox, VENDOR, t) if not r.get("archived")] for t in TYPES}
        values.update({f"{t}_id": live[t][0]["id"] for t in TYPES})
        deal = next(d for d in live["deals"] if _companies_of(d))
        contact = next(c for c in live["contacts"] if c["properties"].get("associatedcompanyid"))
        values.update(deals_linked=deal["id"], deals_to="companies", companies_linked=_companies_of(deal)[0])
        values.update(companies_to="deals", contacts_linked=contact["id"], contacts_to="companies")
        values["contacts_email"] = next(
            c["properties"]["email"] for c in live["contacts"] if c["properties"].get("email")
        )
        yield sandbox, run_cases(sandbox, VENDOR, CASES, values, _credentials, load_waivers())


def _companies_of(deal: dict) -> list[str]:
    return [link["id"] for link in ((deal.get("associations") or {}).get("companies") or {}).get("results") or []]


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_answer_conforms_to_the_published_document(outcomes, name: str) -> None:
    _, found = outcomes
    problem = describe(found[name])
    assert not problem, problem


def test_every_served_route_is_exercised_or_waived(outcomes) -> None:
    assert unjudged_routes(*outcomes, VENDOR) == []


def test_every_waiver_still_excuses_a_violation(outcomes) -> None:
    assert idle_waivers(*outcomes, VENDOR) == []
