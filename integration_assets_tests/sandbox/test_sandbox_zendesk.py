"""The Zendesk sandbox as its clients see it: zenpy 2.0.57 over HTTP, plus `requests` for wire details."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Organization, Ticket, User
from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, RecordNotFoundException

from integration_assets_tests.testing.sandbox import sandbox_records
from integration_sandbox.server import Sandbox

EMAIL, TOKEN = "admin@sandbox.test", "zendesk-sandbox"
AUTH = (f"{EMAIL}/token", TOKEN)
TYPES = ("organizations", "users", "tickets")
STAMP_CONFLICT = (
    "Safe Update prevented the update due to outdated ticket data. Please fetch the latest ticket data and try again."
)
# Beyond the default admin: an agent and an end-user (API tokens), and OAuth tokens, one already expired.
PEOPLE = """
zendesk:
  credentials:
    - {token: agent-token, email: agent@sandbox.test, role: agent}
    - {token: enduser-token, email: customer@sandbox.test, role: end-user}
    - {token: oauth-live}
    - {token: oauth-expired, expires_in_s: 0}
    - {token: oauth-read-only, scopes: [read]}
"""


def put_zendesk_faults(sandbox: Sandbox, profile_yaml: str) -> None:
    response = requests.put(f"{sandbox.url('zendesk')}/__sandbox__/faults", data=profile_yaml, timeout=5)
    assert response.status_code == 200, response.text


def listed(object_type: str, record: dict) -> bool:
    """What Zendesk's plain lists show: not deleted tickets, deleted (inactive) users or deleted organizations."""
    if object_type == "tickets":
        return record["status"] != "deleted"
    if object_type == "users":
        return record["active"] is not False
    return record.get("deleted_at") is None


@pytest.fixture
def zenpy(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Zenpy]:
    """Builds zenpy clients aimed at the sandbox (zenpy reads ZENPY_FORCE_* each time it builds a URL)."""
    host = sandbox.url("zendesk").removeprefix("http://")
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", host)

    def make(**credentials) -> Zenpy:
        credentials = credentials or {"email": EMAIL, "token": TOKEN}
        return Zenpy(subdomain="sandbox", disable_cache=True, timeout=10, **credentials)

    return make


@pytest.fixture
def url(sandbox: Sandbox) -> Callable[[str], str]:
    return lambda path: sandbox.url("zendesk") + path


# -- reading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", TYPES)
@pytest.mark.parametrize("page_size", [True, 7], ids=["page-100", "page-7"])
def test_zenpy_lists_every_record_through_its_cursor_pagination(
    sandbox: Sandbox, dataset: Path, zenpy, object_type: str, page_size
) -> None:
    client = zenpy()
    seen = [item.id for item in getattr(client, object_type)(cursor_pagination=page_size)]
    assert len(seen) == len(set(seen)), "a record came twice"
    assert seen == sorted(seen), "Zendesk lists in ascending id"
    stored = sandbox_records(sandbox, "zendesk", object_type)
    assert set(seen) == {r["id"] for r in stored if listed(object_type, r)}
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert len(seen) == manifest["counts"][f"zendesk/{object_type}"]


def test_zenpy_offset_pagination_follows_next_page(sandbox: Sandbox, zenpy, url) -> None:
    users = list(zenpy().users(cursor_pagination=False))  # no page[size]: offset mode, 100 a page
    stored = [r["id"] for r in sandbox_records(sandbox, "zendesk", "users")]
    assert len(stored) > 100, "the dataset must span two offset pages"
    assert [u.id for u in users] == sorted(stored)
    first = requests.get(url("/api/v2/users.json"), auth=AUTH, timeout=5).json()
    assert first["count"] == len(stored)
    assert first["next_page"] == url("/api/v2/users.json?page=2&per_page=100")
    assert first["previous_page"] is None and "meta" not in first
    page = requests.get(url("/api/v2/users?page=3&per_page=50"), auth=AUTH, timeout=5).json()
    assert [u["id"] for u in page["users"]] == sorted(stored)[100:150]
    assert page["previous_page"] == url("/api/v2/users?page=2&per_page=50")


def test_cursor_links_are_absolute_opaque_and_walk_both_ways(url) -> None:
    pages, link = [], url("/api/v2/tickets.json?page[size]=10")
    while link:
        response = requests.get(link, auth=AUTH, timeout=5)
        assert response.status_code == 200
        body = response.json()
        pages.append(body)
        assert body["links"]["next"].startswith(url("/api/v2/tickets.json?"))
        link = body["links"]["next"] if body["meta"]["has_more"] else None
    ids = [t["id"] for page in pages for t in page["tickets"]]
    assert ids == sorted(ids) and len(pages) > 2
    assert not pages[0]["meta"]["after_cursor"].isdigit(), "cursors are opaque, not ids"
    # Walking back from the last page gives the earlier pages in the same order.
    back = requests.get(pages[-1]["links"]["prev"], auth=AUTH, timeout=5).json()
    assert back["tickets"] == pages[-2]["tickets"]
    assert back["meta"]["has_more"] is (len(pages) > 2)
    first = requests.get(pages[1]["links"]["prev"], auth=AUTH, timeout=5).json()
    assert first["tickets"] == pages[0]["tickets"] and first["meta"]["has_more"] is False
    # Without the .json suffix the same page comes back, and links keep the request's own path.
    bare = requests.get(url("/api/v2/tickets?page[size]=10"), auth=AUTH, timeout=5).json()
    assert bare["tickets"] == pages[0]["tickets"]
    assert bare["links"]["next"].startswith(url("/api/v2/tickets?"))


def test_page_size_and_offset_limits(url) -> None:
    too_big = requests.get(url("/api/v2/tickets.json?page[size]=101"), auth=AUTH, timeout=5)
    assert too_big.status_code == 400 and too_big.json()["error"] == "InvalidPaginationParameter"
    # Offset pagination stops at 10,000 records, whatever the page size.
    assert requests.get(url("/api/v2/users.json?page=100&per_page=100"), auth=AUTH, timeout=5).status_code == 200
    assert requests.get(url("/api/v2/users.json?page=10000&per_page=1"), auth=AUTH, timeout=5).json()["users"] == []
    for query in ("page=101&per_page=100", "page=10001&per_page=1", "page=201&per_page=50"):
        past = requests.get(url(f"/api/v2/users.json?{query}"), auth=AUTH, timeout=5)
        assert past.status_code == 400, query
        assert past.json()["error"] == "InvalidPaginationParameter"
        assert "10,000" in past.json()["description"]
    bad_cursor = requests.get(url("/api/v2/users.json?page[after]=not-a-cursor"), auth=AUTH, timeout=5)
    assert bad_cursor.status_code == 400


def test_show_show_many_and_not_found(zenpy, url) -> None:
    client = zenpy()
    ticket = client.tickets(id=3)
    assert isinstance(ticket, Ticket) and ticket.id == 3
    assert sorted(t.id for t in client.tickets(ids=[1, 2, 99999])) == [1, 2]
    with pytest.raises(RecordNotFoundException):
        client.tickets(id=99999)
    missing = requests.get(url("/api/v2/organizations/1"), auth=AUTH, timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}
    assert requests.get(url("/api/v2/tickets/3"), auth=AUTH, timeout=5).json()["ticket"]["id"] == 3
    count = requests.get(url("/api/v2/tickets/count.json"), auth=AUTH, timeout=5).json()["count"]["value"]
    assert count == len(list(client.tickets()))


# -- incremental exports ------------------------------------------------------------------------------


def mutate(sandbox: Sandbox, object_type: str, count: int, delete: int = 0, seed: int = 1) -> dict:
    response = requests.post(
        f"{sandbox.url('zendesk')}/__sandbox__/mutate",
        json={"object_type": object_type, "count": count, "delete": delete, "seed": seed},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_zenpy_cursor_export_sees_every_ticket_then_later_changes(sandbox: Sandbox, zenpy) -> None:
    client = zenpy()
    export = client.tickets.incremental(start_time=0)  # cursor-based by default (paginate_by_time=False)
    first = [t.id for t in export]
    stored = sandbox_records(sandbox, "zendesk", "tickets")
    assert sorted(first) == sorted(r["id"] for r in stored)
    assert export.end_of_stream is True
    saved = export.after_cursor
    assert list(client.tickets.incremental(cursor=saved)) == [], "nothing changed since"

    changed = mutate(sandbox, "tickets", count=3, delete=1)
    # Zendesk leaves out changes younger than a minute: the saved cursor sees nothing yet.
    assert list(client.tickets.incremental(cursor=saved)) == []
    put_zendesk_faults(sandbox, "zendesk: {incremental_lag_s: 0}")
    later = {t.id: t for t in client.tickets.incremental(cursor=saved)}
    assert set(later) == set(changed["changed"]) | set(changed["deleted"])
    assert later[changed["deleted"][0]].status == "deleted", "deleted tickets stay in the export"
    assert all(later[i].generated_timestamp >= int(time.time()) - 5 for i in later)

    # exclude_deleted leaves the deleted ticket out; the plain list no longer shows it.
    raw = requests.get(
        f"{sandbox.url('zendesk')}/api/v2/incremental/tickets/cursor.json",
        params={"cursor": saved, "exclude_deleted": "true"},
        auth=AUTH,
        timeout=5,
    ).json()
    assert {t["id"] for t in raw["tickets"]} == set(changed["changed"])
    assert raw["end_of_stream"] is True and raw["before_cursor"] is None
    assert changed["deleted"][0] not in {t.id for t in client.tickets()}


def test_cursor_export_pages_in_generated_timestamp_order(sandbox: Sandbox, url) -> None:
    seen, link, pages = [], url("/api/v2/incremental/users/cursor.json?start_time=0&per_page=30"), 0
    while link:
        body = requests.get(link, auth=AUTH, timeout=5).json()
        pages += 1
        seen += body["users"]
        assert "per_page=30" in body["after_url"]
        link = None if body["end_of_stream"] else body["after_url"]
    assert pages > 2
    keys = [u["generated_timestamp"] for u in seen]
    assert keys == sorted(keys)
    assert {u["id"] for u in seen} == {r["id"] for r in sandbox_records(sandbox, "zendesk", "users")}
    middle = seen[len(seen) // 2]["generated_timestamp"]
    later = requests.get(url(f"/api/v2/incremental/users/cursor?start_time={middle}"), auth=AUTH, timeout=5).json()[
        "users"
    ]
    assert later and all(u["generated_timestamp"] >= middle for u in later)
    assert len(later) < len(seen)


def test_zenpy_exports_users_by_cursor_and_organizations_by_time(sandbox: Sandbox, zenpy, url) -> None:
    client = zenpy()
    users = [u.id for u in client.users.incremental(start_time=0)]
    assert sorted(users) == sorted(r["id"] for r in sandbox_records(sandbox, "zendesk", "users"))
    organizations = client.organizations.incremental(start_time=0)
    assert sorted(o.id for o in organizations) == sorted(
        r["id"] for r in sandbox_records(sandbox, "zendesk", "organizations")
    )
    page = requests.get(url("/api/v2/incremental/organizations.json?start_time=0&per_page=10"), auth=AUTH, timeout=5)
    body = page.json()
    assert body["end_of_stream"] is False and body["count"] >= 10
    assert body["next_page"] == url(f"/api/v2/incremental/organizations.json?start_time={body['end_time']}&per_page=10")
    # Zendesk has no cursor export for organizations.
    assert (
        requests.get(url("/api/v2/incremental/organizations/cursor?start_time=0"), auth=AUTH, timeout=5).status_code
        == 404
    )


def test_export_start_time_rules(url) -> None:
    future = requests.get(
        url(f"/api/v2/incremental/tickets/cursor.json?start_time={int(time.time()) + 3600}"),
        auth=AUTH,
        timeout=5,
    )
    assert future.status_code == 400 and future.json()["error"] == "InvalidValue"
    missing = requests.get(url("/api/v2/incremental/tickets/cursor.json"), auth=AUTH, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"] == "InvalidValue"
    garbled = requests.get(url("/api/v2/incremental/tickets/cursor.json?cursor=%21%21"), auth=AUTH, timeout=5)
    assert garbled.status_code == 400


# -- auth, roles, rate limits -------------------------------------------------------------------------


def test_unknown_credentials_are_401_in_zenpy(zenpy, url) -> None:
    with pytest.raises(APIException) as error:
        list(zenpy(email=EMAIL, token="wrong-token").tickets())
    assert error.value.response.status_code == 401
    assert error.value.response.json() == {"error": "Couldn't authenticate you"}
    assert error.value.response.headers["X-Zendesk-Request-Id"]
    # The right token under another user's email, a password, or no Authorization at all: 401 too.
    for auth in (("someone@sandbox.test/token", TOKEN), (EMAIL, TOKEN)):
        assert requests.get(url("/api/v2/tickets"), auth=auth, timeout=5).status_code == 401
    assert requests.get(url("/api/v2/tickets"), timeout=5).status_code == 401


def test_oauth_tokens_and_an_expired_one(sandbox: Sandbox, zenpy) -> None:
    put_zendesk_faults(sandbox, PEOPLE)
    assert len(list(zenpy(oauth_token="oauth-live").organizations())) > 0
    with pytest.raises(APIException) as error:
        list(zenpy(oauth_token="oauth-expired").organizations())
    assert error.value.response.status_code == 401
    assert error.value.response.json()["error"] == "invalid_token"
    assert "expired" in error.value.response.json()["error_description"]
    with pytest.raises(APIException) as error:
        list(zenpy(oauth_token="never-issued").organizations())
    assert error.value.response.status_code == 401
    # An API token is not an OAuth token.
    with pytest.raises(APIException):
        list(zenpy(oauth_token=TOKEN).organizations())


def test_token_ttl_expires_the_default_api_token(sandbox: Sandbox, zenpy) -> None:
    put_zendesk_faults(sandbox, "zendesk: {token_ttl_s: 1}")
    assert zenpy().tickets(id=1).id == 1
    time.sleep(1.05)
    with pytest.raises(APIException) as error:
        zenpy().tickets(id=1)
    assert error.value.response.status_code == 401


def test_roles_and_scopes_are_403(sandbox: Sandbox, zenpy, url) -> None:
    put_zendesk_faults(sandbox, PEOPLE)
    forbidden = {
        "error": "Forbidden",
        "description": "You do not have access to this page. "
        "Please contact the account owner of this help desk for further help.",
    }
    end_user = zenpy(email="customer@sandbox.test", token="enduser-token")
    for call in (
        lambda: list(end_user.tickets()),
        lambda: end_user.users(id=1),
        lambda: list(end_user.organizations()),
    ):
        with pytest.raises(APIException) as error:
            call()
        assert error.value.response.status_code == 403
        assert error.value.response.json() == forbidden
    agent = zenpy(email="agent@sandbox.test", token="agent-token")
    assert len(list(agent.tickets())) > 0, "agents read tickets"
    created = agent.organizations.create(Organization(name="Agent Made Ltd"))
    assert created.id
    with pytest.raises(APIException) as error:
        list(agent.tickets.incremental(start_time=0))
    assert error.value.response.status_code == 403, "incremental exports are for admins"
    read_only = requests.post(
        url("/api/v2/organizations"),
        json={"organization": {"name": "Nope"}},
        headers={"Authorization": "Bearer oauth-read-only"},
        timeout=5,
    )
    assert read_only.status_code == 403 and "write" in read_only.json()["description"]
    assert requests.get(url("/api/v2/tickets"), headers={"Authorization": "Bearer oauth-read-only"}, timeout=5).ok


def test_rate_limit_is_429_with_retry_after_and_zenpy_waits_or_gives_up(sandbox: Sandbox, zenpy, url) -> None:
    put_zendesk_faults(sandbox, "zendesk:\n  rate_limit: {requests: 2, per_seconds: 1}\n")
    first = requests.get(url("/api/v2/tickets/1"), auth=AUTH, timeout=5)
    assert first.headers["X-Rate-Limit"] == "2" and first.headers["X-Rate-Limit-Remaining"] == "1"
    requests.get(url("/api/v2/tickets/1"), auth=AUTH, timeout=5)
    limited = requests.get(url("/api/v2/tickets/1"), auth=AUTH, timeout=5)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert [(e["code"], e["status"]) for e in limited.json()["errors"]] == [("TooManyRequests", "429")]
    assert limited.headers["X-Zendesk-Request-Id"]
    # With no budget for waiting, zenpy raises its own exception instead of sleeping.
    with pytest.raises(RatelimitBudgetExceeded):
        zenpy(email=EMAIL, token=TOKEN, ratelimit_budget=1).tickets(id=1)
    # Without a budget it sleeps Retry-After (1 s here) and retries until it gets through.
    started = time.monotonic()
    assert zenpy().tickets(id=2).id == 2
    assert time.monotonic() - started < 3


def test_allowed_responses_carry_rate_headers_without_a_configured_limit(url) -> None:
    response = requests.get(url("/api/v2/users/me.json"), auth=AUTH, timeout=5)
    assert response.status_code == 200 and response.json()["user"]["email"] == EMAIL
    assert int(response.headers["X-Rate-Limit"]) >= int(response.headers["X-Rate-Limit-Remaining"]) > 0
    assert len(response.headers["X-Zendesk-Request-Id"]) >= 8


# -- writes -------------------------------------------------------------------------------------------


def test_zenpy_creates_updates_and_deletes_a_ticket(sandbox: Sandbox, zenpy) -> None:
    client = zenpy()
    requester = sandbox_records(sandbox, "zendesk", "users")[-1]
    audit = client.tickets.create(Ticket(subject="Printer on fire", description="Smoke", requester_id=requester["id"]))
    ticket = audit.ticket
    assert isinstance(ticket.id, int) and ticket.id > max(
        r["id"] for r in sandbox_records(sandbox, "zendesk", "tickets") if r["id"] != ticket.id
    )
    assert ticket.status == "new" and ticket.description == "Smoke"
    assert ticket.organization_id == requester["organization_id"]
    assert ticket.created_at.endswith("Z") and ticket.created_at == ticket.updated_at
    assert any(event["type"] == "Comment" for event in audit.audit.events)

    ticket.status, ticket.tags = "pending", ["hardware"]
    updated = client.tickets.update(ticket).ticket
    assert (updated.status, updated.tags) == ("pending", ["hardware"])
    assert client.tickets(id=ticket.id).status == "pending"

    assert client.tickets.delete(ticket).status_code == 204
    with pytest.raises(RecordNotFoundException):
        client.tickets(id=ticket.id)
    stored = {r["id"]: r for r in sandbox_records(sandbox, "zendesk", "tickets")}
    assert stored[ticket.id]["status"] == "deleted"
    assert ticket.id not in {t.id for t in client.tickets()}


def test_ticket_validation_is_422(sandbox: Sandbox, zenpy) -> None:
    client = zenpy()
    requester_id = sandbox_records(sandbox, "zendesk", "users")[0]["id"]
    cases = [
        (Ticket(subject="no comment", requester_id=requester_id), "description"),
        (Ticket(subject="no requester", comment={"body": "hi"}), "requester"),  # the API user is no user here
        (Ticket(subject="bad", comment={"body": "hi"}, requester_id=requester_id, status="urgent"), "status"),
    ]
    for ticket, field in cases:
        with pytest.raises(APIException) as error:
            client.tickets.create(ticket)
        body = error.value.response.json()
        assert error.value.response.status_code == 422
        assert body["error"] == "RecordInvalid" and body["description"] == "Record validation errors"
        assert field in body["details"] and {"description", "error"} <= set(body["details"][field][0])


def test_ticket_safe_update_refuses_a_stale_stamp(zenpy) -> None:
    client = zenpy()
    ticket = client.tickets(id=4)
    if ticket.status == "closed":
        ticket = next(t for t in client.tickets() if t.status != "closed")
    stamp = ticket.updated_at
    ticket.safe_update, ticket.updated_stamp, ticket.priority = True, "2020-01-01T00:00:00Z", "high"
    with pytest.raises(APIException) as error:
        client.tickets.update(ticket)
    assert error.value.response.status_code == 409
    assert error.value.response.json() == {"error": "UpdateConflict", "description": STAMP_CONFLICT}
    ticket.updated_stamp, ticket.priority = stamp, "high"
    fresh = client.tickets.update(ticket).ticket
    assert fresh.priority == "high" and fresh.updated_at > stamp
    # The stamp just used is stale now.
    ticket.safe_update, ticket.updated_stamp, ticket.priority = True, stamp, "low"
    with pytest.raises(APIException):
        client.tickets.update(ticket)
    assert client.tickets(id=ticket.id).priority == "high"


def test_closed_tickets_cannot_be_updated(sandbox: Sandbox, url) -> None:
    closed = next(r for r in sandbox_records(sandbox, "zendesk", "tickets") if r["status"] == "closed")
    response = requests.put(
        url(f"/api/v2/tickets/{closed['id']}.json"), json={"ticket": {"status": "open"}}, auth=AUTH, timeout=5
    )
    assert response.status_code == 422 and "status" in response.json()["details"]


def test_ticket_idempotency_key_hit_miss_and_conflict(sandbox: Sandbox, url) -> None:
    requester_id = sandbox_records(sandbox, "zendesk", "users")[5]["id"]
    body = {"ticket": {"subject": "Refund", "comment": {"body": "Please"}, "requester_id": requester_id}}
    key = {"Idempotency-Key": "refund-4711"}
    first = requests.post(url("/api/v2/tickets.json"), json=body, headers=key, auth=AUTH, timeout=5)
    assert first.status_code == 201 and first.headers["x-idempotency-lookup"] == "miss"
    again = requests.post(url("/api/v2/tickets.json"), json=body, headers=key, auth=AUTH, timeout=5)
    assert again.status_code == 201 and again.headers["x-idempotency-lookup"] == "hit"
    assert again.json() == first.json()
    other = {"ticket": {**body["ticket"], "subject": "Refund twice"}}
    conflict = requests.post(url("/api/v2/tickets.json"), json=other, headers=key, auth=AUTH, timeout=5)
    assert conflict.status_code == 400 and conflict.json()["error"] == "IdempotentRequestError"
    too_long = requests.post(
        url("/api/v2/tickets.json"), json=body, headers={"Idempotency-Key": "k" * 256}, auth=AUTH, timeout=5
    )
    assert too_long.status_code == 400
    made = [r for r in sandbox_records(sandbox, "zendesk", "tickets") if r["subject"].startswith("Refund")]
    assert [r["id"] for r in made] == [first.json()["ticket"]["id"]]
    fresh = requests.post(
        url("/api/v2/tickets.json"), json=body, headers={"Idempotency-Key": "another"}, auth=AUTH, timeout=5
    )
    assert fresh.headers["x-idempotency-lookup"] == "miss" and fresh.json()["ticket"]["id"] != made[0]["id"]


def test_zenpy_user_writes_validation_and_delete(sandbox: Sandbox, zenpy) -> None:
    client = zenpy()
    taken = sandbox_records(sandbox, "zendesk", "users")[3]["email"]
    user = client.users.create(User(name="Ada Lovelace", email="ada@sandbox-new.test"))
    assert isinstance(user.id, int) and user.role == "end-user" and user.active is True
    for bad, field in (
        (User(email="nameless@sandbox-new.test"), "name"),
        (User(name="Dup", email=taken), "email"),
    ):
        with pytest.raises(APIException) as error:
            client.users.create(bad)
        assert error.value.response.status_code == 422
        assert field in error.value.response.json()["details"]
    user.phone = "+44 20 7946 0000"
    assert client.users.update(user).phone == "+44 20 7946 0000"
    removed = client.users.delete(user)
    assert removed.active is False
    assert user.id not in {u.id for u in client.users()}
    assert client.users(id=user.id).active is False, "a deleted user can still be shown"


def test_organization_writes_with_safe_update_and_delete(sandbox: Sandbox, zenpy, url) -> None:
    client = zenpy()
    existing = sandbox_records(sandbox, "zendesk", "organizations")[0]
    with pytest.raises(APIException) as error:
        client.organizations.create(Organization(name=existing["name"].upper()))
    assert error.value.response.status_code == 422
    assert error.value.response.json()["details"]["name"][0]["error"] == "DuplicateValue"

    path = url(f"/api/v2/organizations/{existing['id']}.json")
    stale = {"organization": {"notes": "from CRM", "safe_update": True, "updated_stamp": "2000-01-01T00:00:00Z"}}
    conflict = requests.put(path, json=stale, auth=AUTH, timeout=5)
    assert conflict.status_code == 409 and conflict.json()["error"] == "UpdateConflict"
    current = {"organization": {"notes": "from CRM", "safe_update": True, "updated_stamp": existing["updated_at"]}}
    done = requests.put(path, json=current, auth=AUTH, timeout=5)
    assert done.status_code == 200
    org = done.json()["organization"]
    assert org["notes"] == "from CRM" and org["updated_at"] > existing["updated_at"]
    assert "safe_update" not in org and "updated_stamp" not in org
    assert org["generated_timestamp"] >= int(time.time()) - 5

    assert requests.delete(path, auth=AUTH, timeout=5).status_code == 204
    assert existing["id"] not in {o.id for o in client.organizations()}
    assert requests.get(path, auth=AUTH, timeout=5).status_code == 404


def test_mutate_and_delete_are_seen_by_lists_and_records(sandbox: Sandbox, zenpy, url) -> None:
    before = {r["id"]: r for r in sandbox_records(sandbox, "zendesk", "organizations")}
    changed = mutate(sandbox, "organizations", count=2, delete=1, seed=3)
    after = {r["id"]: r for r in sandbox_records(sandbox, "zendesk", "organizations")}
    gone = after[changed["deleted"][0]]
    assert gone["deleted_at"] is not None, "a deleted organization stays, as a tombstone for the export"
    assert gone["deleted_at"] == gone["updated_at"] > before[gone["id"]]["updated_at"]
    assert gone["id"] not in {o.id for o in zenpy().organizations()}
    again = mutate(sandbox, "organizations", count=len(after), seed=3)["changed"]
    assert gone["id"] not in again, "a tombstone is no longer a record a user can edit"
    for org_id in changed["changed"]:
        assert after[org_id]["notes"] != before[org_id]["notes"]
        assert after[org_id]["updated_at"] > before[org_id]["updated_at"]
    users = mutate(sandbox, "users", count=0, delete=2, seed=4)["deleted"]
    records = {r["id"]: r for r in sandbox_records(sandbox, "zendesk", "users")}
    assert all(records[i]["active"] is False for i in users)
    assert not set(users) & {u.id for u in zenpy().users()}
    basic = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    count = requests.get(url("/api/v2/users/count"), headers={"Authorization": f"Basic {basic}"}, timeout=5)
    assert count.json()["count"]["value"] == len(records) - 2


def test_a_deleted_organization_is_gone_from_reads_but_exported_with_deleted_at(sandbox: Sandbox, url) -> None:
    """Zendesk's incremental export reports a deleted organization with `deleted_at`; every other read is 404
    or leaves it out."""
    put_zendesk_faults(sandbox, "zendesk:\n  incremental_lag_s: 0\n")
    live = sorted(r["id"] for r in sandbox_records(sandbox, "zendesk", "organizations"))
    member = next(u for u in sandbox_records(sandbox, "zendesk", "users") if u["organization_id"] in live[1:])
    doomed = member["organization_id"]
    other = next(i for i in live if i != doomed)
    original = requests.get(url(f"/api/v2/organizations/{doomed}.json"), auth=AUTH, timeout=5).json()["organization"]
    deleted_after = int(time.time())
    assert requests.delete(url(f"/api/v2/organizations/{doomed}.json"), auth=AUTH, timeout=5).status_code == 204

    for method, body in (("GET", None), ("PUT", {"organization": {"notes": "back"}}), ("DELETE", None)):
        answer = requests.request(method, url(f"/api/v2/organizations/{doomed}"), json=body, auth=AUTH, timeout=5)
        assert answer.status_code == 404, (method, answer.text)
        assert answer.json() == {"error": "RecordNotFound", "description": "Not found"}
    many = requests.get(url(f"/api/v2/organizations/show_many?ids={doomed},{other}"), auth=AUTH, timeout=5).json()
    assert [o["id"] for o in many["organizations"]] == [other]
    count = requests.get(url("/api/v2/organizations/count"), auth=AUTH, timeout=5).json()["count"]["value"]
    assert count == len(live) - 1
    by_offset = requests.get(url("/api/v2/organizations.json?per_page=100"), auth=AUTH, timeout=5).json()
    by_cursor = requests.get(url("/api/v2/organizations.json?page[size]=100"), auth=AUTH, timeout=5).json()
    for listing in (by_offset, by_cursor):
        assert [o["id"] for o in listing["organizations"]] == [i for i in live if i != doomed]
    assert by_offset["count"] == len(live) - 1

    export = requests.get(
        url(f"/api/v2/incremental/organizations.json?start_time={deleted_after}"), auth=AUTH, timeout=5
    ).json()
    assert [o["id"] for o in export["organizations"]] == [doomed]
    tombstone = export["organizations"][0]
    deleted_at = datetime.strptime(tombstone["deleted_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert deleted_after <= deleted_at.timestamp() <= time.time()
    assert tombstone["updated_at"] == tombstone["deleted_at"] > original["updated_at"]
    assert tombstone["generated_timestamp"] == int(deleted_at.timestamp()) == export["end_time"]
    assert {k: v for k, v in tombstone.items() if k not in ("deleted_at", "updated_at", "generated_timestamp")} == {
        k: v for k, v in original.items() if k not in ("updated_at", "generated_timestamp")
    }, "the rest of the organization is as it was"
    whole = requests.get(url("/api/v2/incremental/organizations.json?start_time=0"), auth=AUTH, timeout=5).json()
    assert whole["organizations"][-1]["id"] == doomed, "the export orders it by its deletion time"
    assert all("deleted_at" not in o for o in whole["organizations"][:-1])

    # Its name is free again, and nothing new can point at it.
    again = requests.post(
        url("/api/v2/organizations"), json={"organization": {"name": original["name"]}}, auth=AUTH, timeout=5
    )
    assert again.status_code == 201, again.text
    user = {"user": {"name": "Orphan", "email": "orphan@example.test", "organization_id": doomed}}
    refused = requests.post(url("/api/v2/users"), json=user, auth=AUTH, timeout=5)
    assert refused.status_code == 422 and "organization_id" in refused.json()["details"]
    ticket = {"ticket": {"subject": "Still here", "comment": {"body": "hello"}, "requester_id": member["id"]}}
    raised = requests.post(url("/api/v2/tickets.json"), json=ticket, auth=AUTH, timeout=5)
    assert raised.status_code == 201 and raised.json()["ticket"]["organization_id"] is None, raised.text

    # The inspection route deletes as Zendesk does too, and a second deletion keeps the first one's time.
    gone = requests.delete(f"{sandbox.url('zendesk')}/__sandbox__/records/organizations/{other}", timeout=5).json()
    assert gone["record"]["deleted_at"] is not None and gone["record"]["id"] == other
    twice = requests.delete(f"{sandbox.url('zendesk')}/__sandbox__/records/organizations/{other}", timeout=5).json()
    assert twice["record"] == gone["record"]
    assert requests.get(url(f"/api/v2/organizations/{other}"), auth=AUTH, timeout=5).status_code == 404
