"""Drills: the access policy is enforced on the request that would be sent, not on what its caller declares.

Each bypass found by the hostile afternoon of issue #13 is replayed against the sandbox and must be refused
before the request leaves: the sandbox's request stats show nothing sent, and the record is unchanged.
"""

from __future__ import annotations

import pytest
import requests

from integration_assets.core.access import Operation, RouteTable
from integration_assets.core.credentials import BearerToken, connector_variable
from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.http import ApiClient
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.resource import StripeResource
from integration_assets.systems.billing.routes import ROUTES as STRIPE_ROUTES
from integration_assets.systems.crm.resource import HubSpotResource
from integration_assets.systems.crm.routes import ROUTES as HUBSPOT_ROUTES
from integration_assets.systems.crm.writes import HubSpotWrites
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets.systems.support.routes import ROUTES as ZENDESK_ROUTES
from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_sandbox.server import Sandbox

OBJECT = "/crm/v3/objects/{object_type}/{id}"


def hubspot(sandbox: Sandbox, connector: str) -> ApiClient:
    return HubSpotResource(base_url=sandbox.url("hubspot"), access_token="pat-sandbox").client(connector)


def stripe(sandbox: Sandbox, connector: str) -> ApiClient:
    return StripeResource(base_url=sandbox.url("stripe"), api_key="sk_test_sandbox").client(connector)


def zendesk(sandbox: Sandbox, connector: str) -> ApiClient:
    connection = ZendeskResource(
        base_url=sandbox.url("zendesk"), email="admin@sandbox.test", api_token="zendesk-sandbox"
    )
    return connection.client(connector)


def sent(sandbox: Sandbox, vendor: str) -> int:
    """Requests the vendor received (the inspection routes are not counted)."""
    return requests.get(f"{sandbox.url(vendor)}/__sandbox__/stats", timeout=5).json()[vendor].get("requests", 0)


def refused(call) -> IntegrationError:
    with pytest.raises(IntegrationError) as raised:
        call()
    assert raised.value.category == Category.PERMISSION_DENIED
    assert "blocked before sending" in raised.value.message
    return raised.value


def a_contact(sandbox: Sandbox) -> dict:
    return next(c for c in sandbox_records(sandbox, "hubspot", "contacts") if not c.get("archived"))


def a_deal(sandbox: Sandbox) -> dict:
    return next(d for d in sandbox_records(sandbox, "hubspot", "deals") if not d.get("archived"))


def patch(client: ApiClient, operation: Operation, object_type: str, path_type: str, record_id: str):
    return lambda: client.call(
        operation,
        object_type,
        "PATCH",
        OBJECT,
        path_params={"object_type": path_type, "id": record_id},
        json_body={"properties": {"firstname": "Mallory"}},
    )


# ------------------------------------------------------------------------------------- the four bypasses


@pytest.mark.parametrize("declared", [Operation.READ, Operation.UPDATE])
def test_a_read_only_connector_cannot_patch_whatever_it_declares(sandbox: Sandbox, declared: Operation) -> None:
    contact = a_contact(sandbox)
    error = refused(patch(hubspot(sandbox, "crm_source"), declared, "contacts", "contacts", contact["id"]))
    assert "PATCH /crm/v3/objects/contacts/{id}" in error.resource.endpoint
    assert sent(sandbox, "hubspot") == 0
    assert a_contact(sandbox)["properties"] == contact["properties"]


@pytest.mark.parametrize("declared_type", ["deals", "contacts"])
def test_billing_to_crm_cannot_patch_a_contact_path(sandbox: Sandbox, declared_type: str) -> None:
    """Allowed to update deals, it reaches no contact, whether it calls the contact a deal or not."""
    contact = a_contact(sandbox)
    client = hubspot(sandbox, "billing_to_crm")
    refused(patch(client, Operation.UPDATE, declared_type, "contacts", contact["id"]))
    refused(lambda: HubSpotWrites(client).update("contacts", contact["id"], {"firstname": "Mallory"}))
    assert sent(sandbox, "hubspot") == 0
    assert a_contact(sandbox)["properties"] == contact["properties"]


@pytest.mark.parametrize(
    "hostile_id",
    ["../contacts/{contact}", "..%2Fcontacts%2F{contact}", "..", ".", "{contact}/../../contacts/{contact}", "a\\b"],
)
def test_a_traversing_deal_id_never_reaches_a_contact(sandbox: Sandbox, hostile_id: str) -> None:
    contact = a_contact(sandbox)
    writes = HubSpotWrites(hubspot(sandbox, "billing_to_crm"))
    record_id = hostile_id.format(contact=contact["id"])
    error = refused(lambda: writes.update("deals", record_id, {"invoice_status": "paid"}))
    assert "not an identifier" in error.message or "matches no" in error.message
    assert sent(sandbox, "hubspot") == 0
    assert a_contact(sandbox)["properties"] == contact["properties"]


def test_path_parameters_are_encoded_into_one_segment(sandbox: Sandbox) -> None:
    """`?`, `#`, `%` and spaces in an id stay inside its segment: HubSpot is asked for that id, and says 404."""
    client = hubspot(sandbox, "crm_source")
    for odd in ("1?archived=true", "1#x", "100%", "a b"):
        with pytest.raises(IntegrationError) as raised:
            client.call(Operation.READ, "deals", "GET", OBJECT, path_params={"object_type": "deals", "id": odd})
        assert raised.value.category == Category.NOT_FOUND, odd
    assert sent(sandbox, "hubspot") == 4


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/crm/v3/objects/contacts/{id}/secrets"),  # an unknown endpoint
        ("POST", "/crm/v3/objects/contacts/batch/upsert"),  # creates or updates: left out on purpose
        ("GET", "/__sandbox__/records/contacts"),  # the operator's routes are not the vendor's
        ("PUT", "/crm/v3/objects/contacts/{id}"),  # a known path with a method it does not take
        ("GET", "/crm/v3/objects/tickets"),  # an object type HubSpot is not read for
    ],
)
def test_a_request_matching_no_route_is_refused(sandbox: Sandbox, method: str, path: str) -> None:
    client = hubspot(sandbox, "crm_source")
    error = refused(lambda: client.call(Operation.READ, "contacts", method, path, path_params={"id": "1"}))
    assert "matches no hubspot route" in error.message and "routes.py" in error.next_action
    assert sent(sandbox, "hubspot") == 0


def test_a_vendor_link_is_routed_like_any_request(sandbox: Sandbox) -> None:
    """A pagination link the vendor gave goes through the same table: it cannot smuggle a write or a dot path."""
    client = hubspot(sandbox, "billing_to_crm")
    contact = a_contact(sandbox)
    for link in (f"/crm/v3/objects/deals/../contacts/{contact['id']}", "/crm/v3/objects/contacts/%2E%2E/x"):
        refused(lambda link=link: client.call(Operation.READ, "deals", "GET", OBJECT, url=client.base_url + link))
    assert sent(sandbox, "hubspot") == 0


# ----------------------------------------------------------------------------------- the other vendors


def test_stripe_posts_are_told_apart_by_route(sandbox: Sandbox) -> None:
    """Every Stripe write is a POST: the route says whether it creates, updates or voids."""
    reader, writer = stripe(sandbox, "billing_source"), stripe(sandbox, "crm_to_billing")
    invoice = sandbox_records(sandbox, "stripe", "invoices")[0]
    refused(lambda: reader.call(Operation.CREATE, "customers", "POST", "/v1/customers", form={"name": "x"}))
    # voiding cannot be undone: it needs delete, which crm_to_billing is not given, whatever it declares
    for declared in (Operation.UPDATE, Operation.DELETE):
        refused(
            lambda declared=declared: writer.call(
                declared, "invoices", "POST", "/v1/invoices/{id}/void", path_params={"id": invoice["id"]}
            )
        )
    refused(lambda: writer.call(Operation.UPDATE, "charges", "POST", "/v1/charges/{id}", path_params={"id": "ch_1"}))
    assert sent(sandbox, "stripe") == 0
    assert reader.call(Operation.READ, "customers", "GET", "/v1/customers", params={"limit": 1}).status == 200


def test_zendesk_read_only_connector_cannot_update(sandbox: Sandbox) -> None:
    reader = zendesk(sandbox, "support_source")
    organization = sandbox_records(sandbox, "zendesk", "organizations")[0]
    refused(
        lambda: reader.call(
            Operation.UPDATE,
            "organizations",
            "PUT",
            "/api/v2/organizations/{id}.json",
            path_params={"id": organization["id"]},
            json_body={"organization": {"notes": "x"}},
        )
    )
    refused(lambda: zendesk(sandbox, "crm_to_support").call(Operation.READ, "users", "GET", "/api/v2/users.json"))
    assert sent(sandbox, "zendesk") == 0


def test_allowed_calls_still_go_through(sandbox: Sandbox) -> None:
    deal = a_deal(sandbox)
    writes = HubSpotWrites(hubspot(sandbox, "billing_to_crm"))
    writes.update("deals", deal["id"], {"dealname": "renamed by the drill"})
    assert writes.read("deals", deal["id"], ["dealname"])["properties"]["dealname"] == "renamed by the drill"
    logged = writes.client.call_log.drain()
    assert [(c.method, c.endpoint) for c in logged] == [
        ("PATCH", "/crm/v3/objects/deals/{id}"),
        ("GET", "/crm/v3/objects/deals/{id}"),
    ]


# --------------------------------------------------------------------------------------- the route tables


def test_every_system_registers_its_route_table_through_the_catalog() -> None:
    tables = {role: CATALOG.routes(role) for role in CATALOG.roles}
    assert tables == {"crm": HUBSPOT_ROUTES, "billing": STRIPE_ROUTES, "support": ZENDESK_ROUTES}
    for role, table in tables.items():
        assert table is not None and table.system == role
        routed = {route.object_type for route in table.routes}
        assert set(CATALOG.object_types()[role]) <= routed


@pytest.mark.parametrize(
    ("table", "method", "path", "expected"),
    [
        (HUBSPOT_ROUTES, "POST", "/crm/v3/objects/deals/search", ("deals", Operation.READ)),
        (HUBSPOT_ROUTES, "POST", "/crm/v3/objects/deals", ("deals", Operation.CREATE)),
        (HUBSPOT_ROUTES, "PATCH", "/crm/v3/objects/deals/12", ("deals", Operation.UPDATE)),
        (HUBSPOT_ROUTES, "PATCH", "/crm/v3/objects/deals/..%2Fcontacts%2F1", None),
        (HUBSPOT_ROUTES, "PATCH", "/crm/v3/objects/deals/%2e%2e", None),
        (STRIPE_ROUTES, "GET", "/v1/customers/search", ("customers", Operation.READ)),
        (STRIPE_ROUTES, "POST", "/v1/customers", ("customers", Operation.CREATE)),
        (STRIPE_ROUTES, "POST", "/v1/customers/cus_1", ("customers", Operation.UPDATE)),
        (STRIPE_ROUTES, "POST", "/v1/invoices/in_1/finalize", ("invoices", Operation.UPDATE)),
        (STRIPE_ROUTES, "POST", "/v1/invoices/in_1/void", ("invoices", Operation.DELETE)),
        (STRIPE_ROUTES, "POST", "/v1/invoices/in_1/send", None),
        (ZENDESK_ROUTES, "GET", "/api/v2/incremental/users/cursor.json", ("users", Operation.READ)),
        (ZENDESK_ROUTES, "GET", "/api/v2/incremental/organizations/cursor.json", None),
        (ZENDESK_ROUTES, "PUT", "/api/v2/organizations/7", ("organizations", Operation.UPDATE)),
        (ZENDESK_ROUTES, "POST", "/api/v2/organizations/create_or_update", None),
    ],
)
def test_route_look_up(table: RouteTable, method: str, path: str, expected) -> None:
    route = table.match(method, path)
    assert (route and (route.object_type, route.operation)) == expected


def test_a_vendor_without_a_route_table_can_send_nothing(sandbox: Sandbox) -> None:
    class Bare:
        system, name, request_id_header, error_rules = "crm", "bare", "X-Id", ()

    client = ApiClient(Bare(), sandbox.url("hubspot"), BearerToken("pat-sandbox"), connector="crm_source",
                       policy=hubspot(sandbox, "crm_source").policy)  # fmt: skip
    refused(lambda: client.call(Operation.READ, "contacts", "GET", "/crm/v3/objects/contacts"))
    assert sent(sandbox, "hubspot") == 0


# -------------------------------------------------------------------------------- one credential each


def test_each_connector_may_have_its_own_credential(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only token for the source connector; the write-back connector keeps the shared one."""
    put_faults(sandbox, "hubspot:\n  credentials:\n    - {token: pat-read-only, scopes: [crm.objects.deals.read]}\n")
    assert connector_variable("HUBSPOT", "crm", "crm_source", "ACCESS_TOKEN") == "HUBSPOT_SOURCE_ACCESS_TOKEN"
    monkeypatch.setenv("HUBSPOT_SOURCE_ACCESS_TOKEN", "pat-read-only")
    source, writer = hubspot(sandbox, "crm_source"), hubspot(sandbox, "billing_to_crm")
    assert source.credential.headers() == {"Authorization": "Bearer pat-read-only"}
    assert writer.credential.headers() == {"Authorization": "Bearer pat-sandbox"}
    deal = a_deal(sandbox)
    assert source.call(Operation.READ, "deals", "GET", OBJECT, path_params={"object_type": "deals", "id": deal["id"]})
    with pytest.raises(IntegrationError) as raised:  # the vendor too refuses what the read-only key may not do
        source.call(Operation.READ, "contacts", "GET", "/crm/v3/objects/contacts")
    assert raised.value.status == 403 and "pat-read-only" not in str(raised.value)
    monkeypatch.setenv("HUBSPOT_SOURCE_ACCESS_TOKEN", "")  # empty: unset, the shared token again
    assert hubspot(sandbox, "crm_source").credential.headers() == {"Authorization": "Bearer pat-sandbox"}


def test_stripe_and_zendesk_connector_credentials(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SOURCE_API_KEY", "rk_test_source")
    monkeypatch.setenv("STRIPE_CRM_TO_BILLING_API_KEY", "rk_test_writer")
    monkeypatch.setenv("ZENDESK_SOURCE_EMAIL", "reader@sandbox.test")
    monkeypatch.setenv("ZENDESK_SOURCE_API_TOKEN", "zendesk-source")
    assert stripe(sandbox, "billing_source").credential.headers()["Authorization"] == "Bearer rk_test_source"
    assert stripe(sandbox, "crm_to_billing").credential.headers()["Authorization"] == "Bearer rk_test_writer"
    source, writer = zendesk(sandbox, "support_source").credential, zendesk(sandbox, "crm_to_support").credential
    assert (source.username, source.password) == ("reader@sandbox.test/token", "zendesk-source")
    assert (writer.username, writer.password) == ("admin@sandbox.test/token", "zendesk-sandbox")


@pytest.mark.parametrize("alone", ["EMAIL", "API_TOKEN"])
def test_a_zendesk_connector_login_needs_both_email_and_token(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, alone: str
) -> None:
    """The connector's token with the shared admin email (or the reverse) would log in as someone else: refused
    when the client is built, naming both variables and neither value."""
    monkeypatch.delenv("ZENDESK_SOURCE_EMAIL", raising=False)
    monkeypatch.delenv("ZENDESK_SOURCE_API_TOKEN", raising=False)
    monkeypatch.setenv(f"ZENDESK_SOURCE_{alone}", "only-half-secret")
    with pytest.raises(ValueError) as raised:
        zendesk(sandbox, "support_source")
    message = str(raised.value)
    assert "ZENDESK_SOURCE_EMAIL" in message and "ZENDESK_SOURCE_API_TOKEN" in message
    assert "only-half-secret" not in message and "admin@sandbox.test" not in message
    writer = zendesk(sandbox, "crm_to_support").credential  # another connector keeps the shared login
    assert (writer.username, writer.password) == ("admin@sandbox.test/token", "zendesk-sandbox")
