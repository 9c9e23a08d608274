"""The conformance harness itself: it finds what does not conform, says where, and its waivers cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration_assets.core.config import ConfigError
from integration_assets_tests.testing.conformance import Answer, NullableValidator, Violation, judge
from integration_assets_tests.testing.conformance_cases import served_routes, stale_route_waivers, unexercised_routes
from integration_assets_tests.testing.conformance_waivers import WAIVERS, Waivers, load_waivers
from integration_sandbox.kit import Response, Route
from integration_sandbox.server import Sandbox
from integration_sandbox.vendors.hubspot import HubSpotApp

JSON = {"content-type": "application/json; charset=utf-8"}
RECORD = {"id": "1", "properties": {"email": "a@example.test"}, "createdAt": "2026-01-02T03:04:05.000Z"}
RECORD |= {"updatedAt": "2026-01-02T03:04:05.000Z", "archived": False}
VIOLATION = Violation("zendesk", "GET /api/v2/tickets", 200, "$.tickets[3].group_id", "type", "None")


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Answer:
    payload = b"" if body is None else json.dumps(body).encode()
    return Answer(status, {**(JSON if payload else {}), **(headers or {})}, payload)


def test_a_wrongly_typed_field_is_named_by_vendor_operation_status_and_json_path() -> None:
    page = {"results": [RECORD, {**RECORD, "id": 2}]}
    verdict = judge("hubspot", "GET", "/crm/v3/objects/contacts", answer(200, page))
    assert [str(v) for v in verdict.violations] == [
        "hubspot GET /crm/v3/objects/contacts 200 $.results[1].id [type]: 2 is not of type 'string'"
    ]


def test_a_missing_required_field_is_named_in_the_path() -> None:
    verdict = judge(
        "hubspot", "GET", "/crm/v3/objects/deals/7", answer(200, {k: v for k, v in RECORD.items() if k != "id"})
    )
    assert [(v.operation, v.at, v.keyword) for v in verdict.violations] == [
        ("GET /crm/v3/objects/0-3/{dealId}", "$.id", "required")
    ]


def test_the_declared_response_is_the_exact_status_then_the_range_then_default() -> None:
    error = {"category": "OBJECT_NOT_FOUND", "correlationId": "9b1c4d06-6b8e-4e8a-9a4b-2f1d3c5e7a90", "message": "x"}
    assert judge("hubspot", "GET", "/crm/v3/objects/contacts/1", answer(404, error)).violations == []
    wrong = judge("hubspot", "GET", "/crm/v3/objects/contacts/1", answer(404, {"message": "x"}))
    assert {v.at for v in wrong.violations} == {"$.category", "$.correlationId"}
    undeclared = judge("zendesk", "GET", "/api/v2/tickets/1", answer(404, {"error": "RecordNotFound"}))
    assert [(v.keyword, v.message) for v in undeclared.violations] == [
        ("status", "status 404 is not declared (declared: 200)")
    ]


def test_content_type_headers_and_empty_bodies_are_checked() -> None:
    as_text = Answer(200, {"content-type": "text/html"}, b"<html>")
    assert [v.keyword for v in judge("zendesk", "GET", "/api/v2/users/me", as_text).violations] == ["content-type"]
    no_location = judge("zendesk", "POST", "/api/v2/tickets", answer(201, {"ticket": {"id": 1}}))
    assert ("header", "declared header Location is missing") in [(v.keyword, v.message) for v in no_location.violations]
    with_body = judge("hubspot", "DELETE", "/crm/v3/objects/contacts/1", answer(204, {"unexpected": True}))
    assert [v.keyword for v in with_body.violations] == ["body"]
    not_json = Answer(200, JSON, b'{"results": [')
    assert [v.keyword for v in judge("hubspot", "GET", "/crm/v3/objects/companies", not_json).violations] == ["body"]


def test_a_path_the_document_does_not_carry_is_a_violation() -> None:
    verdict = judge("stripe", "GET", "/v1/refunds", answer(200, {}))
    assert [(v.operation, v.keyword) for v in verdict.violations] == [("GET /v1/refunds", "operation")]


def test_literal_paths_win_over_templates() -> None:
    assert judge("stripe", "GET", "/v1/customers/search", answer(200, {})).operation == "GET /v1/customers/search"
    assert judge("zendesk", "GET", "/api/v2/users/me", answer(200, {})).operation == "GET /api/v2/users/me"


def test_nullable_expandable_fields_admit_null_and_nothing_else() -> None:
    customer = {"id": "cus_1", "object": "customer", "created": 1, "livemode": False, "address": None}
    assert judge("stripe", "GET", "/v1/customers/cus_1", answer(200, customer)).violations == []
    broken = judge("stripe", "GET", "/v1/customers/cus_1", answer(200, {**customer, "address": 5}))
    assert [v.at for v in broken.violations] == ["$"] and "address" in broken.violations[0].message


def test_a_nullable_enum_admits_null_and_only_its_values() -> None:
    status = {"type": "string", "enum": ["complete", "failed"]}  # Stripe's automatic_tax.status, as published
    assert NullableValidator({**status, "nullable": True}).is_valid(None)
    assert not NullableValidator({**status, "nullable": True}).is_valid("pending")
    assert not NullableValidator(status).is_valid(None)


def test_waivers_match_by_path_patterns_and_report_what_they_no_longer_excuse() -> None:
    waivers = Waivers.model_validate(
        {
            "violations": [
                {
                    "vendor": "zendesk",
                    "operation": ["GET /api/v2/tickets", "GET /api/v2/tickets/{ticket_id}"],
                    "status": 200,
                    "at": "$..group_id",
                    "keyword": ["type", "enum"],
                    "why": "Zendesk sends null for an unrouted ticket's group.",
                    "evidence": "https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/",
                }
            ]
        }
    )
    assert waivers.waiver_for(VIOLATION) is not None
    assert waivers.waiver_for(Violation("zendesk", "GET /api/v2/tickets", 200, "$.tickets[3].type", "type", "")) is None
    assert (
        waivers.waiver_for(Violation("zendesk", "GET /api/v2/tickets", 201, "$.tickets[3].group_id", "type", ""))
        is None
    )
    unused = waivers.unused("zendesk", [VIOLATION])
    assert len(unused) == 2 and "GET /api/v2/tickets/{ticket_id} is unused" in unused[0] and "enum" in unused[1]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"evidence": "https://example.com/blog"}, "is not the vendor's own documentation"),
        ({"evidence": "https://github.com/someone/stripe-notes"}, "is not the vendor's own documentation"),
        ({"vendor": "salesforce"}, "Input should be 'hubspot', 'stripe' or 'zendesk'"),
        ({"operation": "FETCH /v1/x"}, "String should match pattern"),
        ({"why": "because"}, "at least 20 characters"),
    ],
)
def test_a_bad_waiver_is_refused_at_load_naming_file_line_and_entry(
    tmp_path: Path, entry: dict, complaint: str
) -> None:
    good = {
        "vendor": "stripe",
        "operation": "GET /v1/customers",
        "status": 200,
        "at": "$.data[*].address",
        "keyword": "type",
        "why": "An example waiver with a long enough reason.",
        "evidence": "https://docs.stripe.com/api/customers/object",
    }
    path = tmp_path / "waivers.yaml"
    path.write_text("violations:\n  - " + json.dumps({**good, **entry}) + "\n")
    with pytest.raises(ConfigError) as refused:
        load_waivers(path)
    assert f"{path}:2: violations.0." in str(refused.value) and complaint in str(refused.value)


def test_a_repeated_waiver_is_refused(tmp_path: Path) -> None:
    entry = {
        "vendor": "stripe",
        "operation": "GET /v1/customers",
        "status": 200,
        "at": "$",
        "keyword": "status",
        "why": "An example waiver with a long enough reason.",
        "evidence": "https://docs.stripe.com/api",
    }
    path = tmp_path / "waivers.yaml"
    path.write_text(f"violations:\n  - {json.dumps(entry)}\n  - {json.dumps(entry)}\n")
    with pytest.raises(ConfigError, match=r"waivers.yaml:3: violations.1: repeats entry 0"):
        load_waivers(path)


def test_a_waiver_may_cite_the_vendors_own_github_organisation(tmp_path: Path) -> None:
    entry = {
        "vendor": "hubspot",
        "operation": "POST /crm/v3/objects/contacts/batch/create",
        "status": 201,
        "at": "$.*",
        "keyword": "required",
        "why": "An example waiver with a long enough reason.",
        "evidence": "https://github.com/HubSpot/hubspot-api-php/issues/603",
    }
    path = tmp_path / "waivers.yaml"
    path.write_text(f"violations:\n  - {json.dumps(entry)}\n")
    assert str(load_waivers(path).violations[0].evidence) == entry["evidence"]


def test_the_shipped_waivers_load() -> None:
    assert load_waivers(WAIVERS).violations


class _HubSpotWithANewRoute(HubSpotApp):
    def build_routes(self) -> list[Route]:
        return [*super().build_routes(), Route("GET", "/crm/v3/owners", lambda request: Response(200, {}), None)]


def test_a_new_route_fails_coverage_until_a_case_reaches_it_and_stale_route_waivers_fail() -> None:
    sandbox = Sandbox(None, apps={"hubspot": _HubSpotWithANewRoute})
    routes = served_routes(sandbox, "hubspot")
    assert "GET /crm/v3/owners" in unexercised_routes(routes, [], "hubspot", load_waivers())
    waivers = Waivers.model_validate(
        {
            "routes_outside_documents": [
                {"vendor": "hubspot", "operation": operation, "why": "An example waiver, long enough.", "evidence": url}
                for operation, url in [
                    (
                        "GET /crm/v3/objects/tickets",
                        "https://developers.hubspot.com/docs/guides/api/crm/objects/tickets",
                    ),
                    (
                        "GET /crm/v3/objects/contacts",
                        "https://developers.hubspot.com/docs/guides/api/crm/objects/contacts",
                    ),
                ]
            ]
        }
    )
    assert stale_route_waivers(routes, "hubspot", waivers) == [
        "hubspot GET /crm/v3/objects/tickets: waived, but the sandbox serves no such route",
        "hubspot GET /crm/v3/objects/contacts: waived, but the document carries it: judge it instead",
    ]
