"""The HubSpot sandbox against the official SDK: tokens, scopes, rate limits and OAuth refresh, then writes."""

from __future__ import annotations

import re
import time

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInputForCreate as CompaniesCreateBatch
from hubspot.crm.companies import BatchInputSimplePublicObjectId as CompaniesIdBatch
from hubspot.crm.companies import BatchReadInputSimplePublicObjectId as CompaniesReadBatch
from hubspot.crm.companies import SimplePublicObjectId as CompanyId
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyCreate
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ForbiddenException, NotFoundException, UnauthorizedException
from hubspot.crm.deals.exceptions import ForbiddenException as DealsForbidden
from hubspot.crm.deals.exceptions import UnauthorizedException as DealsUnauthorized
from hubspot.oauth import ApiException as OAuthApiException

from integration_assets_tests.testing.hubspot import UUID, api, client, header, json_body, live
from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_sandbox.server import Sandbox


# -- auth, limits --------------------------------------------------------------------------------------------
def test_unknown_token_is_401_with_hubspot_header_and_body(sandbox: Sandbox) -> None:
    with pytest.raises(UnauthorizedException) as denied:
        client(sandbox, "pat-unknown").crm.contacts.basic_api.get_page(limit=1)
    assert isinstance(denied.value, ApiException) and denied.value.status == 401
    assert header(denied.value, "x-hubspot-auth-failure") == "401 Unauthorized"
    body = json_body(denied.value)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    assert api(sandbox, "GET", "/crm/v3/objects/contacts", token="").status_code == 401


def test_expired_token_is_401_expired_authentication(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  credentials:\n    - {token: pat-stale, expires_in_s: 0}\n")
    time.sleep(1.05)
    with pytest.raises(DealsUnauthorized) as expired:
        client(sandbox, "pat-stale").crm.deals.basic_api.get_page(limit=1)
    body = json_body(expired.value)
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert re.fullmatch(r"The OAuth token used to make this call expired [1-9]\d* second\(s\) ago\.", body["message"])
    assert body["correlationId"] == header(expired.value, "X-HubSpot-Correlation-Id")
    assert client(sandbox).crm.deals.basic_api.get_page(limit=1).results  # the default token still works


def test_missing_scope_is_403_missing_scopes(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  credentials:\n    - {token: pat-reader, scopes: [crm.objects.contacts.read]}\n")
    reader = client(sandbox, "pat-reader")
    assert reader.crm.contacts.basic_api.get_page(limit=2).results
    assert reader.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=1)).total > 0
    with pytest.raises(ForbiddenException) as denied:
        reader.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "x@y.example"}))
    body = json_body(denied.value)
    assert denied.value.status == 403 and body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredScopes"] == ["crm.objects.contacts.write"]
    with pytest.raises(DealsForbidden) as other_type:
        reader.crm.deals.basic_api.get_page(limit=1)
    assert json_body(other_type.value)["errors"][0]["context"]["requiredScopes"] == ["crm.objects.deals.read"]


def test_rate_limit_headers_then_429(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  rate_limit: {requests: 3, per_seconds: 60}\n")
    basic = client(sandbox).crm.companies.basic_api
    remaining = []
    for _ in range(3):
        _, status, headers = basic.get_page_with_http_info(limit=1)
        assert status == 200 and headers["X-HubSpot-RateLimit-Max"] == "3"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        assert UUID.match(headers["X-HubSpot-Correlation-Id"])
        remaining.append(headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    from hubspot.crm.companies import ApiException as CompaniesApiException

    with pytest.raises(CompaniesApiException) as limited:
        basic.get_page(limit=1)
    assert limited.value.status == 429
    body = json_body(limited.value)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"] == header(limited.value, "X-HubSpot-Correlation-Id")
    assert header(limited.value, "X-HubSpot-RateLimit-Remaining") == "0"
    assert header(limited.value, "X-HubSpot-RateLimit-Max") == "3"


def test_oauth_refresh_mints_a_token_that_works_then_expires(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  token_ttl_s: 1\n")
    anonymous = HubSpot(host=sandbox.url("hubspot"))
    started = time.time()
    minted = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        refresh_token="refresh-sandbox",
    )
    assert minted.token_type == "bearer" and minted.refresh_token == "refresh-sandbox"
    assert minted.expires_in == 1 and minted.access_token not in ("pat-sandbox", "oauth-sandbox")
    info = anonymous.oauth.access_tokens_api.get(minted.access_token)
    assert info.token == minted.access_token and info.expires_in <= 1 and "crm.objects.contacts.read" in info.scopes
    fresh = client(sandbox, minted.access_token)
    page = fresh.crm.contacts.basic_api.get_page(limit=3)
    assert len(page.results) == 3 and time.time() - started < 1
    time.sleep(max(0.0, started + 1.1 - time.time()))
    assert anonymous.oauth.access_tokens_api.get(minted.access_token).expires_in == 0
    with pytest.raises(UnauthorizedException) as expired:
        fresh.crm.contacts.basic_api.get_page(limit=3)
    assert json_body(expired.value)["category"] == "EXPIRED_AUTHENTICATION"
    with pytest.raises(OAuthApiException) as refused:
        anonymous.oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id="sandbox-client",
            client_secret="wrong",
            refresh_token="refresh-sandbox",
        )
    assert refused.value.status == 400 and json_body(refused.value)["status"] == "BAD_CLIENT_SECRET"
    with pytest.raises(OAuthApiException) as unknown:
        anonymous.oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            refresh_token="nope",
        )
    assert json_body(unknown.value)["status"] == "BAD_REFRESH_TOKEN"


# -- writes --------------------------------------------------------------------------------------------------
def test_create_update_conflict_and_archive_a_contact(sandbox: Sandbox) -> None:
    basic = client(sandbox).crm.contacts.basic_api
    company = live(sandbox_records(sandbox, "hubspot", "companies"))[0]
    highest = max(int(r["id"]) for r in sandbox_records(sandbox, "hubspot", "contacts"))
    created = basic.create(
        SimplePublicObjectInputForCreate(
            properties={
                "email": "new.person@sandbox.example",
                "firstname": "New",
                "phone": "+1 212 555 0142",
            },
            associations=[
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        )
    )
    assert int(created.id) > highest and created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] == created.properties["lastmodifieddate"]
    assert created.properties["associatedcompanyid"] == company["id"]
    company_contacts = client(sandbox).crm.associations.v4.basic_api.get_page("companies", company["id"], "contacts")
    assert created.id in {r.to_object_id for r in company_contacts.results}

    with pytest.raises(ApiException) as conflict:
        basic.create(SimplePublicObjectInputForCreate(properties={"email": "NEW.person@sandbox.example"}))
    body = json_body(conflict.value)
    assert conflict.value.status == 409 and body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {created.id}"

    time.sleep(0.005)
    updated = basic.update(created.id, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert updated.properties["lifecyclestage"] == "lead"
    assert updated.properties["lastmodifieddate"] > created.properties["lastmodifieddate"]
    assert updated.updated_at > created.updated_at and updated.created_at == created.created_at
    by_email = basic.update(
        "new.person@sandbox.example",
        SimplePublicObjectInput(properties={"phone": "+1 212 555 0199"}),
        id_property="email",
    )
    assert by_email.id == created.id and by_email.properties["phone"] == "+1 212 555 0199"

    basic.archive(created.id)
    with pytest.raises(NotFoundException):
        basic.get_by_id(created.id)
    assert basic.get_by_id(created.id, archived=True).archived is True
    archived_page = basic.get_page(archived=True, limit=100)
    assert created.id in {r.id for r in archived_page.results}
    assert all(r.archived and r.archived_at is not None for r in archived_page.results)
    stored = next(r for r in sandbox_records(sandbox, "hubspot", "contacts") if r["id"] == created.id)
    assert stored["archived"] is True and stored["archivedAt"]
    # the email is free again once its contact is archived
    again = basic.create(SimplePublicObjectInputForCreate(properties={"email": "new.person@sandbox.example"}))
    assert again.id != created.id


def test_batch_create_read_update_upsert_archive(sandbox: Sandbox) -> None:
    hubspot = client(sandbox)
    companies = hubspot.crm.companies.batch_api
    made = companies.create(
        CompaniesCreateBatch(
            inputs=[CompanyCreate(properties={"name": f"Batch Co {i}", "domain": f"b{i}.example"}) for i in range(3)]
        )
    )
    ids = [c.id for c in made.results]
    assert len(set(ids)) == 3 and made.status == "COMPLETE"
    read = companies.read(
        CompaniesReadBatch(
            inputs=[CompanyId(id=i) for i in [*ids, "424242"]],
            properties=["name"],
            properties_with_history=[],
        )
    )
    assert sorted(c.id for c in read.results) == sorted(ids)
    assert read.num_errors == 1 and read.errors[0].context["ids"] == ["424242"]
    assert {c.properties["name"] for c in read.results} == {"Batch Co 0", "Batch Co 1", "Batch Co 2"}
    companies.archive(CompaniesIdBatch(inputs=[CompanyId(id=ids[0])]))
    stored = {r["id"]: r for r in sandbox_records(sandbox, "hubspot", "companies")}
    assert stored[ids[0]]["archived"] is True and stored[ids[1]]["archived"] is False

    contacts = hubspot.crm.contacts.batch_api
    existing = next(c for c in live(sandbox_records(sandbox, "hubspot", "contacts")) if c["properties"]["email"])
    upserted = contacts.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id=existing["properties"]["email"],
                    id_property="email",
                    properties={"lifecyclestage": "evangelist"},
                ),
                SimplePublicObjectBatchInputUpsert(
                    id="brand.new@upsert.example", id_property="email", properties={"firstname": "Brand"}
                ),
            ]
        )
    )
    outcome = {r.properties["email"]: (r.id, r.new) for r in upserted.results}
    assert outcome[existing["properties"]["email"]] == (existing["id"], False)
    assert outcome["brand.new@upsert.example"][1] is True
    update = contacts.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=existing["id"], properties={"firstname": "Renamed"})]
        )
    )
    assert update.results[0].properties["firstname"] == "Renamed"
    assert update.results[0].properties["lifecyclestage"] == "evangelist"
    too_many = {"inputs": [{"properties": {"name": str(i)}} for i in range(101)]}
    rejected = api(sandbox, "POST", "/crm/v3/objects/companies/batch/create", json=too_many)
    assert rejected.status_code == 400 and rejected.json()["category"] == "VALIDATION_ERROR"
    duplicate = {"inputs": [{"properties": {"email": existing["properties"]["email"]}}]}
    assert api(sandbox, "POST", "/crm/v3/objects/contacts/batch/create", json=duplicate).status_code == 409


def test_sandbox_delete_archives_and_is_seen_only_with_archived_true(sandbox: Sandbox) -> None:
    order = {"object_type": "contacts", "count": 0, "delete": 4, "seed": 9}
    deleted = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/mutate", json=order, timeout=10).json()["deleted"]
    basic = client(sandbox).crm.contacts.basic_api
    assert not set(deleted) & {r.id for r in client(sandbox).crm.contacts.get_all()}
    archived = {r.id for r in client(sandbox).crm.contacts.get_all(archived=True)}
    assert set(deleted) <= archived
    stored = {r["id"]: r for r in sandbox_records(sandbox, "hubspot", "contacts")}
    assert all(stored[i]["archived"] and stored[i]["archivedAt"] for i in deleted)
    assert archived == {i for i, r in stored.items() if r["archived"]}
    with pytest.raises(NotFoundException):
        basic.get_by_id(deleted[0])


def test_drift_reshapes_served_records_but_not_search_semantics(sandbox: Sandbox) -> None:
    put_faults(sandbox, "hubspot:\n  drift:\n    contacts: {rename: {email: email_address}}\n")
    page = client(sandbox).crm.contacts.basic_api.get_page(limit=5)
    assert all("email" not in r.properties and "email_address" in r.properties for r in page.results)
    someone = next(c for c in live(sandbox_records(sandbox, "hubspot", "contacts")) if c["properties"]["email"])
    where = {"propertyName": "email", "operator": "EQ", "value": someone["properties"]["email"]}
    found = api(sandbox, "POST", "/crm/v3/objects/contacts/search", json={"filterGroups": [{"filters": [where]}]})
    assert [r["id"] for r in found.json()["results"]] == [someone["id"]]
    assert found.json()["results"][0]["properties"]["email_address"] == someone["properties"]["email"]
