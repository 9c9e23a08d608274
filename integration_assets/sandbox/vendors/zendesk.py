"""Zendesk Support, imitated: tickets, users and organizations under `/api/v2`, as zenpy sees them.

What the real API does and this one copies (shared/reference/vendor-apis.md §3):

- every path works with and without a `.json` suffix;
- lists page by cursor (`page[size]` ≤ 100, opaque `page[after]`/`page[before]`, absolute `links`) or
  by offset (`page`, `per_page`, refused past the first 10,000 records), in ascending id; deleted tickets
  and deleted (inactive) users are not listed;
- incremental exports are ordered by `generated_timestamp`, leave out changes younger than
  `incremental_lag_s`, keep their cursor valid after `end_of_stream`, and are for admins only;
- writes keep `updated_at` and `generated_timestamp` current, refuse stale `safe_update`s with 409, and ticket
  creation honours `Idempotency-Key`.

Within one `generated_timestamp` second, the export orders records by write sequence (the dataset's records by
id), so a record written in the same second as a cursor is never skipped.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from integration_assets.sandbox.auth import Grant
from integration_assets.sandbox.ratelimit import RollingWindow, Verdict
from integration_assets.sandbox.server import Request, Response, Route, VendorApp, VendorError, dumps
from integration_assets.sandbox.store import Collection, Record

TYPES = ("organizations", "users", "tickets")
SINGULAR = {"organizations": "organization", "users": "user", "tickets": "ticket"}
MAX_PAGE_SIZE = 100
MAX_EXPORT_PAGE = 1000
OFFSET_LIMIT = 10_000
IDEMPOTENCY_TTL_S = 2 * 3600
NOMINAL_RATE_LIMIT = 700  # requests per minute of the Enterprise plan, reported when no limit is configured

TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PRIORITIES = ("urgent", "high", "normal", "low")
TICKET_TYPES = ("problem", "incident", "question", "task")
USER_ROLES = ("end-user", "agent", "admin")

UNAUTHENTICATED = {"error": "Couldn't authenticate you"}
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}
FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner of this help desk "
    "for further help.",
}
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}

# Fields a record always has, whatever the dataset's shape; new records start from these.
BASE_FIELDS: dict[str, dict[str, Any]] = {
    "tickets": {
        "id": None, "url": None, "external_id": None, "type": None, "subject": None, "description": None,
        "priority": None, "status": "new", "requester_id": None, "submitter_id": None, "assignee_id": None,
        "organization_id": None, "group_id": None, "tags": [], "custom_fields": [], "due_at": None,
        "created_at": None, "updated_at": None, "generated_timestamp": None,
    },
    "users": {
        "id": None, "url": None, "name": None, "email": None, "phone": None, "role": "end-user",
        "organization_id": None, "external_id": None, "tags": [], "user_fields": {}, "active": True,
        "verified": False, "suspended": False, "time_zone": "UTC", "locale": "en-US", "created_at": None,
        "updated_at": None, "generated_timestamp": None,
    },
    "organizations": {
        "id": None, "url": None, "name": None, "domain_names": [], "external_id": None, "details": None,
        "notes": None, "group_id": None, "shared_tickets": False, "shared_comments": False, "tags": [],
        "organization_fields": {}, "created_at": None, "updated_at": None, "generated_timestamp": None,
    },
}  # fmt: skip
READ_ONLY = {"id", "url", "created_at", "updated_at", "generated_timestamp", "active", "description"}
READ_ONLY |= {"raw_subject", "via"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: Any) -> int | None:
    """Unix seconds of an ISO-8601 timestamp, or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def listed(object_type: str) -> Callable[[Record], bool]:
    """Whether a record shows in the plain lists: deleted tickets and deleted (inactive) users do not."""
    if object_type == "tickets":
        return lambda r: r.get("status") != "deleted"
    if object_type == "users":
        return lambda r: r.get("active") is not False
    return lambda r: not r.get("deleted_at")


def _encode(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def invalid_value(description: str) -> VendorError:
    return VendorError(400, {"error": "InvalidValue", "description": description})


def invalid_paging(description: str) -> VendorError:
    return VendorError(400, {"error": "InvalidPaginationParameter", "description": description})


def record_invalid(details: dict[str, list[dict[str, str]]]) -> VendorError:
    return VendorError(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})


def problem(field: str, description: str, error: str) -> dict[str, list[dict[str, str]]]:
    return {field: [{"description": description, "error": error}]}


def _stamp(record: Record) -> None:
    """Gives a record without one the `generated_timestamp` its `updated_at` implies."""
    if not isinstance(record.get("generated_timestamp"), int):
        record["generated_timestamp"] = epoch(record.get("updated_at")) or 0


class ExportCollection(Collection):
    """A collection in id order that also keeps a timeline in (generated_timestamp, write sequence) order.

    The timeline is what incremental exports walk; it follows every `put`/`remove`, including the ones the
    sandbox's inspection routes make directly. It also counts the records the plain lists show.
    """

    def __init__(self, object_type: str, records: list[Record], *, visible: Callable[[Record], bool]) -> None:
        for record in records:
            _stamp(record)
        super().__init__(object_type, records, order_key=lambda r: r["id"])
        self.visible = visible
        ordered = sorted(self._records.values(), key=lambda r: (r["generated_timestamp"], r["id"]))
        self._timeline: list[tuple[int, int]] = []  # (generated_timestamp, sequence), ascending
        self._at: dict[tuple[int, int], Hashable] = {}  # timeline key → record id
        self._key_of: dict[Hashable, tuple[int, int]] = {}  # record id → timeline key
        self._sequence = 0
        self.visible_count = 0
        for record in ordered:
            self._track(record)

    def put(self, record: Record) -> None:
        _stamp(record)
        with self._lock:
            old = self._records.get(record["id"])
            super().put(record)
            if old is not None:
                self._untrack(old)
            self._track(record)

    def remove(self, record_id: Hashable) -> Record | None:
        with self._lock:
            record = super().remove(record_id)
            if record is not None:
                self._untrack(record)
            return record

    def last_id(self) -> Any:
        with self._lock:
            return self._ids[-1] if self._ids else None

    def scan_back(self, end: int, limit: int, keep: Callable[[Record], bool]) -> tuple[list[Record], bool]:
        """Up to `limit` kept records before position `end`, ascending, and whether more precede them."""
        found: list[Record] = []
        with self._lock:
            index = end - 1
            while index >= 0 and len(found) < limit:
                record = self._records[self._ids[index]]
                index -= 1
                if keep(record):
                    found.append(record)
            while index >= 0 and not keep(self._records[self._ids[index]]):
                index -= 1
            return found[::-1], index >= 0

    def export(
        self,
        after: tuple[int, int],
        limit: int,
        cutoff: float,
        keep: Callable[[Record], bool] | None,
        *,
        whole_seconds: bool = False,
    ) -> tuple[list[Record], tuple[int, int], bool]:
        """Records after timeline key `after` whose generated_timestamp is at most `cutoff`.

        Returns the records, the key of the last one examined (where to resume) and whether the stream
        has ended (nothing older than `cutoff` follows). With `whole_seconds`, a page that fills up goes
        on to the end of its last second, as Zendesk's time-based export does.
        """
        found: list[Record] = []
        last = after
        with self._lock:
            index, total = bisect.bisect_right(self._timeline, after), len(self._timeline)
            while index < total:
                key = self._timeline[index]
                if key[0] > cutoff:
                    break
                if len(found) >= limit and not (whole_seconds and found and key[0] == last[0]):
                    break
                record = self._records[self._at[key]]
                index += 1
                last = key
                if keep is None or keep(record):
                    found.append(record)
            ended = index >= total or self._timeline[index][0] > cutoff
            return found, last, ended

    def _track(self, record: Record) -> None:
        key = (int(record.get("generated_timestamp") or 0), self._sequence)
        self._sequence += 1
        bisect.insort(self._timeline, key)
        self._at[key] = record["id"]
        self._key_of[record["id"]] = key
        self.visible_count += bool(self.visible(record))

    def _untrack(self, record: Record) -> None:
        key = self._key_of.pop(record["id"], None)
        if key is not None:
            del self._timeline[bisect.bisect_left(self._timeline, key)]
            del self._at[key]
        self.visible_count -= bool(self.visible(record))


@dataclass(frozen=True)
class _Remembered:
    """A ticket creation stored under its Idempotency-Key."""

    digest: str
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: float


class ZendeskApp(VendorApp):
    vendor = "zendesk"
    object_types = TYPES
    request_id_header = "X-Zendesk-Request-Id"

    def __init__(self, dataset_dir, sandbox) -> None:
        super().__init__(dataset_dir, sandbox)
        self._idempotency: dict[str, _Remembered] = {}
        self._usage = RollingWindow(NOMINAL_RATE_LIMIT, 60.0)
        self._audit_ids = 0

    # -- routes ---------------------------------------------------------------------------------------
    def build_routes(self) -> list[Route]:
        routes = [self._route("GET", "/api/v2/users/me", self._me, None)]
        for object_type in TYPES:
            base, export = f"/api/v2/{object_type}", f"/api/v2/incremental/{object_type}"
            read, write = f"{object_type}:read", f"{object_type}:write"
            table = [
                ("GET", export, self._export_by_time, read),
                ("GET", base, self._list, read),
                ("GET", f"{base}/show_many", self._show_many, read),
                ("GET", f"{base}/count", self._count, read),
                ("GET", f"{base}/{{id}}", self._show, read),
                ("POST", base, self._create, write),
                ("PUT", f"{base}/{{id}}", self._update, write),
                ("DELETE", f"{base}/{{id}}", self._destroy, write),
            ]
            if object_type != "tickets":
                table.append(("POST", f"{base}/create_or_update", self._create_or_update, write))
            if object_type != "organizations":  # Zendesk has cursor exports for tickets and users only
                table.append(("GET", f"{export}/cursor", self._export_by_cursor, read))
            routes += [self._route(m, t, h, s, object_type) for m, t, h, s in table]
        return routes

    def _route(self, method: str, template: str, handler, scope: str | None, object_type: str = "") -> Route:
        """A route whose responses, errors included, carry Zendesk's rate-limit headers."""

        def serve(request: Request) -> Response:
            try:
                response = handler(request, object_type) if object_type else handler(request)
            except VendorError as error:
                error.response.headers.update(self._nominal_rate_headers(request))
                raise
            response.headers.update(self._nominal_rate_headers(request))
            return response

        return Route(method, template, serve, scope)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        return super().match(method, path.removesuffix(".json"))

    def order_key(self, object_type: str) -> Callable[[Record], Any]:
        return lambda record: record["id"]

    def make_collection(self, object_type: str, records: list[Record]) -> ExportCollection:
        return ExportCollection(object_type, records, visible=listed(object_type))

    def coerce_id(self, object_type: str, raw: str) -> Any:
        return int(raw.removesuffix(".json"))

    # -- auth, errors, limits -----------------------------------------------------------------------
    def default_grants(self) -> list[Grant]:
        return [Grant(token="zendesk-sandbox", email="admin@sandbox.test", role="admin")]

    def authenticate(self, request: Request, route: Route) -> Grant:
        scheme, _, value = (request.header("Authorization") or "").strip().partition(" ")
        now = time.time()
        basic = {"WWW-Authenticate": 'Basic realm="Web Password"'}
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise VendorError(401, UNAUTHENTICATED, basic) from None
            grant = self.credentials.lookup(secret)
            email = user.removesuffix("/token")
            if (
                grant is None
                or not user.endswith("/token")  # passwords are no longer accepted
                or grant.email is None
                or grant.email.lower() != email.lower()
                or grant.expired(now)
            ):
                raise VendorError(401, UNAUTHENTICATED, basic)
        elif scheme.lower() == "bearer":
            grant = self.credentials.lookup(value.strip())
            if grant is None or grant.email is not None:
                raise VendorError(401, UNAUTHENTICATED, {"WWW-Authenticate": 'Bearer realm="Zendesk"'})
            if grant.expired(now):
                raise VendorError(
                    401, INVALID_TOKEN, {"WWW-Authenticate": 'Bearer realm="Zendesk", error="invalid_token"'}
                )
        else:
            raise VendorError(401, UNAUTHENTICATED, basic)
        if route.scope is None:
            return grant
        if grant.role == "end-user" or ("/incremental/" in route.template and grant.role != "admin"):
            raise VendorError(403, FORBIDDEN)
        if grant.scopes is not None and not {route.scope, route.scope.split(":")[1]} & grant.scopes:
            access = route.scope.split(":")[1]
            raise VendorError(
                403,
                {
                    "error": "Forbidden",
                    "description": f"You are missing the following required scopes: {access}",
                },
            )
        return grant

    def error(self, status: int, message: str) -> Response:
        bodies = {
            404: {"error": "InvalidEndpoint", "description": "Not found"},
            500: {"error": "InternalError", "description": f"Internal server error ({message})"},
            502: {"error": "BadGateway", "description": f"Bad gateway ({message})"},
            503: {
                "error": "ServiceUnavailable",
                "description": f"Service temporarily unavailable ({message})",
            },
        }
        return Response(status, bodies.get(status, {"error": "Error", "description": message}))

    def rate_limited(self, verdict: Verdict) -> Response:
        return Response(
            429,
            {
                "error": "APIRateLimitExceeded",
                "description": "Number of allowed API requests per minute exceeded",
            },
            {
                "Retry-After": str(max(1, math.ceil(verdict.retry_after_s))),
                "X-Rate-Limit": str(verdict.limit),
                "X-Rate-Limit-Remaining": "0",
            },
        )

    def rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {"X-Rate-Limit": str(verdict.limit), "X-Rate-Limit-Remaining": str(verdict.remaining)}

    def new_request_id(self) -> str:
        return secrets.token_hex(8)

    # -- changes over time ------------------------------------------------------------------------------
    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        edited = copy.deepcopy(record)
        if object_type == "tickets":
            if edited.get("status") not in ("deleted", "closed"):  # closed tickets only take system tags
                edited["status"] = rng.choice([s for s in TICKET_STATUSES[1:5] if s != edited.get("status")])
                edited["priority"] = rng.choice(TICKET_PRIORITIES)
            edited["tags"] = sorted({*(edited.get("tags") or []), rng.choice(["vip", "follow_up", "billing"])})
        elif object_type == "users":
            edited["phone"] = f"+1 555 {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"
            if rng.random() < 0.5 and edited.get("name"):
                edited["name"] = edited["name"].strip() + " Jr."
        else:
            edited["notes"] = f"Reviewed {iso(now)[:10]}: account {rng.choice(['healthy', 'at risk', 'expanding'])}"
            fields = dict(edited.get("organization_fields") or {})
            fields["health"] = rng.choice(["green", "yellow", "red"])
            edited["organization_fields"] = fields
        return self._touched(edited, now)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        collection = self.collections[object_type]
        record = collection.get(record_id)
        if record is None:
            return None
        if object_type == "organizations":
            collection.remove(record_id)
            return None
        gone = dict(record, status="deleted") if object_type == "tickets" else dict(record, active=False)
        gone = self._touched(gone, now)
        collection.put(gone)
        return gone

    @staticmethod
    def _touched(record: Record, now: float) -> Record:
        record["updated_at"] = iso(now)
        record["generated_timestamp"] = int(now)
        return record

    # -- reading ----------------------------------------------------------------------------------------
    def _collection(self, object_type: str) -> ExportCollection:
        return self.collections[object_type]  # type: ignore[return-value]

    def _envelope(self, key: str, records: list[Record], object_type: str, extra: dict[str, Any]) -> bytes:
        tail = dumps(extra)[1:-1]
        head = b'{"' + key.encode() + b'":' + self.render_list(object_type, records)
        return head + (b"," + tail if tail else b"") + b"}"

    def _link(self, request: Request, path: str | None = None, **params: Any) -> str:
        """An absolute URL to `path` (default: the request's own) with the request's query updated."""
        query = {k: v[0] for k, v in request.query.items() if v}
        for name, value in params.items():
            if value is None:
                query.pop(name, None)
            else:
                query[name] = str(value)
        return f"{request.base_url}{path or request.path}?{urlencode(query)}"

    def _record(self, request: Request, object_type: str) -> Record:
        try:
            record_id = self.coerce_id(object_type, request.params["id"])
        except ValueError:
            raise VendorError(404, NOT_FOUND) from None
        record = self._collection(object_type).get(record_id)
        if record is None or (object_type == "tickets" and not listed(object_type)(record)):
            raise VendorError(404, NOT_FOUND)
        return record

    def _show(self, request: Request, object_type: str) -> Response:
        record = self._record(request, object_type)
        key = SINGULAR[object_type].encode()
        return Response(200, b'{"' + key + b'":' + self.render(object_type, record) + b"}")

    def _me(self, request: Request) -> Response:
        grant = request.grant
        email = (grant.email or "").lower() if grant else ""
        users = self._collection("users")
        found = next((u for u in users if email and str(u.get("email") or "").lower() == email), None)
        if found is not None:
            return Response(200, b'{"user":' + self.render("users", found) + b"}")
        synthetic = {
            "id": None, "name": email.split("@")[0] or "Anonymous user", "email": email or None,
            "role": grant.role if grant else "end-user", "active": True,
        }  # fmt: skip
        return Response(200, {"user": synthetic})

    def _show_many(self, request: Request, object_type: str) -> Response:
        raw = [part for part in (request.arg("ids") or "").split(",") if part.strip()]
        if len(raw) > MAX_PAGE_SIZE:
            raise VendorError(
                400,
                {"error": "TooManyValues", "description": f"Too many values: maximum {MAX_PAGE_SIZE} ids"},
            )
        collection, keep = self._collection(object_type), listed(object_type)
        found = []
        for part in raw:
            try:
                record = collection.get(int(part))
            except ValueError:
                continue
            if record is not None and (object_type != "tickets" or keep(record)):
                found.append(record)
        extra = {"next_page": None, "previous_page": None, "count": len(found)}
        return Response(200, self._envelope(object_type, found, object_type, extra))

    def _count(self, request: Request, object_type: str) -> Response:
        value = self._collection(object_type).visible_count
        return Response(200, {"count": {"value": value, "refreshed_at": iso(time.time())}})

    def _list(self, request: Request, object_type: str) -> Response:
        if any(name.startswith("page[") for name in request.query):
            return self._list_by_cursor(request, object_type)
        return self._list_by_offset(request, object_type)

    def _list_by_cursor(self, request: Request, object_type: str) -> Response:
        size = _int(request.arg("page[size]"), MAX_PAGE_SIZE, "page[size]")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise invalid_paging(f"page[size] must be between 1 and {MAX_PAGE_SIZE}")
        collection, keep = self._collection(object_type), listed(object_type)
        before = _list_cursor(request.arg("page[before]"), "page[before]")
        after = _list_cursor(request.arg("page[after]"), "page[after]")
        if before is not None:
            records, has_more = collection.scan_back(collection.index_past_key(before - 1), size, keep)
        else:
            start = collection.index_past_key(after) if after is not None else 0
            records, resume = collection.scan(start, size, keep)
            has_more = resume is not None
        after_cursor = _encode({"o": "id", "v": records[-1]["id"]}) if records else None
        before_cursor = _encode({"o": "id", "v": records[0]["id"]}) if records else None
        meta = {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}
        links = {
            "next": self._link(request, **{"page[after]": after_cursor, "page[before]": None, "page[size]": size})
            if after_cursor
            else None,
            "prev": self._link(request, **{"page[before]": before_cursor, "page[after]": None, "page[size]": size})
            if before_cursor
            else None,
        }
        return Response(200, self._envelope(object_type, records, object_type, {"meta": meta, "links": links}))

    def _list_by_offset(self, request: Request, object_type: str) -> Response:
        page = _int(request.arg("page"), 1, "page")
        per_page = min(_int(request.arg("per_page"), MAX_PAGE_SIZE, "per_page"), MAX_PAGE_SIZE)
        if page < 1 or per_page < 1:
            raise invalid_paging("page and per_page must be positive")
        if page * per_page > OFFSET_LIMIT:
            raise invalid_paging(
                "Offset pagination is limited to the first 10,000 records (100 pages of 100). "
                "Use cursor pagination (page[size], page[after]) to fetch more."
            )
        collection, keep = self._collection(object_type), listed(object_type)
        offset = (page - 1) * per_page
        if collection.visible_count == len(collection):
            records, _ = collection.scan(offset, per_page)
        else:
            records = collection.scan(0, offset + per_page, keep)[0][offset:]
        count = collection.visible_count
        extra = {
            "next_page": self._link(request, page=page + 1, per_page=per_page)
            if offset + len(records) < count
            else None,
            "previous_page": self._link(request, page=page - 1, per_page=per_page) if page > 1 else None,
            "count": count,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))

    # -- incremental exports ------------------------------------------------------------------------
    def _export_setup(self, request: Request, object_type: str):
        per_page = _int(request.arg("per_page"), MAX_EXPORT_PAGE, "per_page")
        per_page = max(1, min(per_page, MAX_EXPORT_PAGE))
        deleted_out = object_type == "tickets" and (request.arg("exclude_deleted") or "").lower() == "true"
        keep = listed(object_type) if deleted_out else None
        now = time.time()
        return per_page, keep, now, now - self.settings.incremental_lag_s

    @staticmethod
    def _start_time(request: Request, now: float) -> int:
        raw = request.arg("start_time")
        if raw is None or raw == "":
            raise invalid_value("start_time is required: use start_time=<unix seconds>, or cursor=<after_cursor>")
        try:
            start = int(float(raw))
        except ValueError:
            raise invalid_value(f"start_time must be a unix timestamp in seconds, got {raw!r}") from None
        if start > now:
            raise invalid_value("start_time cannot be in the future")
        return start

    def _export_by_cursor(self, request: Request, object_type: str) -> Response:
        per_page, keep, now, cutoff = self._export_setup(request, object_type)
        cursor = request.arg("cursor")
        if cursor:
            decoded = _decode(cursor)
            if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, int) for v in decoded)):
                raise invalid_value("cursor is invalid")
            after = (decoded[0], decoded[1])
        else:
            after = (self._start_time(request, now), -1)
        records, last, ended = self._collection(object_type).export(after, per_page, cutoff, keep)
        after_cursor = _encode(list(last))
        path = f"/api/v2/incremental/{object_type}/cursor.json"
        extra = {
            "after_url": self._link(request, path, cursor=after_cursor, start_time=None),
            "after_cursor": after_cursor,
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": ended,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))

    def _export_by_time(self, request: Request, object_type: str) -> Response:
        per_page, keep, now, cutoff = self._export_setup(request, object_type)
        start = self._start_time(request, now)
        records, _, ended = self._collection(object_type).export(
            (start, -1), per_page, cutoff, keep, whole_seconds=True
        )
        end_time = records[-1]["generated_timestamp"] if records else start
        path = f"/api/v2/incremental/{object_type}.json"
        extra = {
            "next_page": self._link(request, path, start_time=end_time),
            "previous_page": None,
            "count": len(records),
            "end_of_stream": ended,
            "end_time": end_time,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))

    # -- writing ----------------------------------------------------------------------------------------
    def _payload(self, request: Request, object_type: str) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise VendorError(400, {"error": "InvalidJSON", "description": "The request body is not a JSON object"})
        fields = body.get(SINGULAR[object_type])
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise record_invalid(problem("base", f"{SINGULAR[object_type]} must be an object", "InvalidValue"))
        return fields

    def _template(self, object_type: str) -> Record:
        collection = self._collection(object_type)
        sample = collection.get(collection.last_id()) if len(collection) else None
        template: Record = {}
        for key, value in (sample or {}).items():
            template[key] = [] if isinstance(value, list) else {} if isinstance(value, dict) else None
        for key, value in BASE_FIELDS[object_type].items():
            if key not in template or value is not None:
                template[key] = copy.deepcopy(value)
        return template

    def _url(self, object_type: str, record_id: int) -> str:
        collection = self._collection(object_type)
        sample = collection.get(collection.last_id()) if len(collection) else None
        url = sample.get("url") if sample else None
        if isinstance(url, str) and "/" in url:
            return f"{url.rsplit('/', 1)[0]}/{record_id}.json"
        return f"{self.base_url}/api/v2/{object_type}/{record_id}.json"

    def _next_id(self, object_type: str) -> int:
        last = self._collection(object_type).last_id()
        return (last or 0) + 1

    def _create(self, request: Request, object_type: str) -> Response:
        if object_type == "tickets":
            return self._with_idempotency(
                request, lambda: self._insert(request, object_type, self._payload(request, object_type))
            )
        return self._insert(request, object_type, self._payload(request, object_type))

    def _insert(self, request: Request, object_type: str, fields: dict[str, Any]) -> Response:
        now = time.time()
        record = self._template(object_type)
        record_id = self._next_id(object_type)
        record.update(id=record_id, url=self._url(object_type, record_id), created_at=iso(now))
        events = self._apply(object_type, record, fields, request, creating=True)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 201, events, now)

    def _update(self, request: Request, object_type: str) -> Response:
        record = copy.deepcopy(self._record(request, object_type))
        fields = self._payload(request, object_type)
        self._check_stamp(fields, record)
        if object_type == "tickets" and record.get("status") == "closed":
            raise record_invalid(problem("status", "Status: closed prevents ticket update", "ClosedPreventsUpdate"))
        now = time.time()
        events = self._apply(object_type, record, fields, request, creating=False)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 200, events, now)

    def _create_or_update(self, request: Request, object_type: str) -> Response:
        fields = self._payload(request, object_type)
        existing = self._find_existing(object_type, fields)
        if existing is None:
            return self._insert(request, object_type, fields)
        record = copy.deepcopy(existing)
        self._check_stamp(fields, record)
        now = time.time()
        self._apply(object_type, record, fields, request, creating=False)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 200, [], now)

    def _destroy(self, request: Request, object_type: str) -> Response:
        record = self._record(request, object_type)
        kept = self.delete(object_type, record["id"], time.time())
        if object_type == "users" and kept is not None:
            return Response(200, b'{"user":' + self.render("users", kept) + b"}")
        return Response(204)

    def _written(self, object_type: str, record: Record, status: int, events: list, now: float) -> Response:
        key = SINGULAR[object_type]
        body = b'{"' + key.encode() + b'":' + self.render(object_type, record)
        if object_type == "tickets":
            self._audit_ids += 1
            audit = {
                "id": record["id"] * 1000 + self._audit_ids,
                "ticket_id": record["id"],
                "created_at": iso(now),
                "author_id": record.get("submitter_id"),
                "metadata": {"system": {"client": "integration-sandbox"}, "custom": {}},
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "events": [dict(event, id=record["id"] * 1000 + i) for i, event in enumerate(events, 1)],
            }
            body += b',"audit":' + dumps(audit)
        headers = {"Location": self._url(object_type, record["id"])} if status == 201 else {}
        return Response(status, body + b"}", headers)

    @staticmethod
    def _check_stamp(fields: dict[str, Any], record: Record) -> None:
        if not fields.get("safe_update"):
            return
        stamp = fields.get("updated_stamp")
        if stamp is None:
            raise record_invalid(problem("updated_stamp", "Updated stamp: is required for a safe update", "BlankValue"))
        if epoch(stamp) is None or epoch(stamp) != epoch(record.get("updated_at")):
            raise VendorError(
                409,
                {
                    "error": "UpdateConflict",
                    "description": "Safe Update prevented the update due to outdated ticket data. "
                    "Please fetch the latest ticket data and try again.",
                },
            )

    def _find_existing(self, object_type: str, fields: dict[str, Any]) -> Record | None:
        collection = self._collection(object_type)
        if isinstance(fields.get("id"), int) and collection.get(fields["id"]) is not None:
            return collection.get(fields["id"])
        keys = ["external_id", "email"] if object_type == "users" else ["external_id"]
        for key in keys:
            wanted = fields.get(key)
            if wanted:
                for record in collection:
                    if str(record.get(key) or "").lower() == str(wanted).lower() and listed(object_type)(record):
                        return record
        return None

    def _apply(
        self, object_type: str, record: Record, fields: dict[str, Any], request: Request, *, creating: bool
    ) -> list[dict[str, Any]]:
        """Validates `fields` and writes them into `record`; returns the ticket audit's events."""
        writable = {k: v for k, v in fields.items() if k not in READ_ONLY and k in record}
        if object_type == "tickets":
            return self._apply_ticket(record, fields, writable, request, creating)
        if object_type == "users":
            self._check_user(record, writable, creating)
        else:
            self._check_organization(record, writable, creating)
        record.update(writable)
        return []

    def _apply_ticket(
        self,
        record: Record,
        fields: dict[str, Any],
        writable: dict[str, Any],
        request: Request,
        creating: bool,
    ) -> list[dict[str, Any]]:
        errors: dict[str, list[dict[str, str]]] = {}
        comment = fields.get("comment")
        body = None
        if isinstance(comment, dict):
            body = comment.get("body") or comment.get("html_body")
        elif isinstance(comment, str):
            body = comment
        if creating and not body and isinstance(fields.get("description"), str):
            body = fields["description"]
        if creating and not body:
            errors.update(problem("description", "Description: cannot be blank", "BlankValue"))
        if creating:
            requester_id = self._requester(fields, request, errors)
            if requester_id is not None:
                writable["requester_id"] = requester_id
                writable.setdefault("submitter_id", requester_id)
                if writable.get("organization_id") is None:
                    requester = self._collection("users").get(requester_id) or {}
                    writable["organization_id"] = requester.get("organization_id")
            writable.setdefault("status", "open" if writable.get("assignee_id") else "new")
            record["description"] = body
        elif "requester_id" in writable and self._collection("users").get(writable["requester_id"]) is None:
            errors.update(problem("requester_id", "Requester: is invalid", "InvalidValue"))
        if "status" in writable and writable["status"] not in TICKET_STATUSES:
            errors.update(problem("status", f"Status: {writable['status']} is not valid", "InvalidValue"))
        if writable.get("priority") is not None and writable["priority"] not in TICKET_PRIORITIES:
            errors.update(problem("priority", f"Priority: {writable['priority']} is not valid", "InvalidValue"))
        if writable.get("type") is not None and writable["type"] not in TICKET_TYPES:
            errors.update(problem("type", f"Type: {writable['type']} is not valid", "InvalidValue"))
        org = writable.get("organization_id")
        if org is not None and self._collection("organizations").get(org) is None:
            errors.update(problem("organization_id", "Organization: is invalid", "InvalidValue"))
        tags = _tags(fields, record, errors)
        if errors:
            raise record_invalid(errors)
        events = []
        for key, value in writable.items():
            if creating or record.get(key) != value:
                events.append({"type": "Create" if creating else "Change", "field_name": key, "value": value})
        record.update(writable)
        if "subject" in writable and "raw_subject" in record:
            record["raw_subject"] = writable["subject"]
        if creating and "via" in record:
            record["via"] = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
        if tags is not None:
            record["tags"] = tags
        if body:
            public = comment.get("public", True) if isinstance(comment, dict) else True
            events.append({"type": "Comment", "body": body, "public": public, "author_id": record["requester_id"]})
        return events

    def _requester(self, fields: dict[str, Any], request: Request, errors: dict) -> int | None:
        users = self._collection("users")
        requester_id = fields.get("requester_id")
        if requester_id is not None:
            if not isinstance(requester_id, int) or users.get(requester_id) is None:
                errors.update(problem("requester_id", "Requester: is invalid", "InvalidValue"))
                return None
            return requester_id
        requester = fields.get("requester")
        email = requester.get("email") if isinstance(requester, dict) else None
        if email is None:
            email = request.grant.email if request.grant else None  # the API user requests it, as in Zendesk
        for user in users:
            if email and str(user.get("email") or "").lower() == str(email).lower() and user.get("active") is not False:
                return user["id"]
        if isinstance(requester, dict) and email and "@" in str(email):
            now = time.time()
            user = self._template("users")
            user_id = self._next_id("users")
            user.update(
                id=user_id,
                url=self._url("users", user_id),
                name=requester.get("name") or str(email).split("@")[0],
                email=email,
                role="end-user",
                created_at=iso(now),
            )
            self.store("users", self._touched(user, now))
            return user_id
        errors.update(problem("requester", "Requester: cannot be blank", "BlankValue"))
        return None

    def _check_user(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        errors: dict[str, list[dict[str, str]]] = {}
        name = writable.get("name", record.get("name"))
        if not isinstance(name, str) or not name.strip():
            errors.update(problem("name", "Name: is too short (minimum one character)", "BlankValue"))
        role = writable.get("role", record.get("role"))
        if role not in USER_ROLES:
            errors.update(problem("role", f"Role: {role} is not valid", "InvalidValue"))
        email = writable.get("email")
        if email is not None:
            if not isinstance(email, str) or "@" not in email:
                errors.update(problem("email", f"Email: {email} is not properly formatted", "InvalidFormat"))
            elif any(
                str(u.get("email") or "").lower() == email.lower()
                and u["id"] != record["id"]
                and u.get("active") is not False
                for u in self._collection("users")
            ):
                errors.update(
                    problem("email", f"Email: {email} is already being used by another user", "DuplicateValue")
                )
        org = writable.get("organization_id")
        if org is not None and self._collection("organizations").get(org) is None:
            errors.update(problem("organization_id", "Organization: is invalid", "InvalidValue"))
        if errors:
            raise record_invalid(errors)

    def _check_organization(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        name = writable.get("name", record.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise record_invalid(problem("name", "Name: cannot be blank", "BlankValue"))
        if "name" in writable and any(
            str(o.get("name") or "").strip().lower() == name.strip().lower() and o["id"] != record["id"]
            for o in self._collection("organizations")
        ):
            raise record_invalid(problem("name", "Name: has already been taken", "DuplicateValue"))

    def _with_idempotency(self, request: Request, create: Callable[[], Response]) -> Response:
        key = request.header("Idempotency-Key")
        if key is None:
            return create()
        if not key or len(key) > 255:
            raise VendorError(
                400,
                {
                    "error": "IdempotentRequestError",
                    "description": "Idempotency-Key must be 1 to 255 characters",
                },
            )
        now = time.time()
        for stale in [k for k, v in self._idempotency.items() if now - v.stored_at > IDEMPOTENCY_TTL_S]:
            del self._idempotency[stale]
        body = request.json()
        canonical = json.dumps(body, sort_keys=True).encode() if isinstance(body, dict) else request.body
        digest = hashlib.sha256(canonical).hexdigest()
        remembered = self._idempotency.get(key)
        if remembered is not None:
            if remembered.digest != digest:
                raise VendorError(
                    400,
                    {
                        "error": "IdempotentRequestError",
                        "description": "The idempotency key was already used with a different request body",
                    },
                    {"x-idempotency-lookup": "hit"},
                )
            return Response(remembered.status, remembered.body, {**remembered.headers, "x-idempotency-lookup": "hit"})
        response = create()
        response.headers["x-idempotency-lookup"] = "miss"
        if 200 <= response.status < 300:
            self._idempotency[key] = _Remembered(
                digest, response.status, response.payload(), dict(response.headers), now
            )
        return response

    def _nominal_rate_headers(self, request: Request) -> dict[str, str]:
        """The plan's limit, reported when the fault profile sets none (a configured limit's headers win)."""
        verdict = self._usage.hit(request.grant.token if request.grant else "")
        return {"X-Rate-Limit": str(NOMINAL_RATE_LIMIT), "X-Rate-Limit-Remaining": str(verdict.remaining)}


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_paging(f"{name} must be an integer, got {raw!r}") from None


def _list_cursor(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    decoded = _decode(raw)
    if not (isinstance(decoded, dict) and isinstance(decoded.get("v"), int)):
        raise invalid_paging(f"{name} is not a valid cursor")
    return decoded["v"]


def _tags(fields: dict[str, Any], record: Record, errors: dict) -> list[str] | None:
    """The ticket's tags after `tags`, `additional_tags` and `remove_tags`; None when unchanged."""
    if not any(k in fields for k in ("tags", "additional_tags", "remove_tags")):
        return None
    tags = fields.get("tags", record.get("tags") or [])
    extra, removed = fields.get("additional_tags") or [], fields.get("remove_tags") or []
    if not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in (tags, extra, removed)):
        errors.update(problem("tags", "Tags: must be a list of strings", "InvalidValue"))
        return None
    merged = list(dict.fromkeys([*tags, *extra]))
    return [t for t in merged if t not in set(removed)]
