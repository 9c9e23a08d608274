"""HubSpot CRM v3 as the sandbox serves it: objects, search, batch, associations, pipelines, OAuth.

Records are stored exactly as the API returns them (`id`, `properties` of strings, `createdAt`, `updatedAt`,
`archived`, `archivedAt`; deals also keep their `associations`) and listed in ascending numeric id. Deletes
are archives. Every write stamps `lastmodifieddate` (contacts) / `hs_lastmodifieddate` (companies, deals) and
`updatedAt`, which is what an incremental search (`GTE <epoch ms>`) sees.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from integration_assets.sandbox.auth import Grant
from integration_assets.sandbox.generator import INDUSTRIES
from integration_assets.sandbox.ratelimit import Verdict
from integration_assets.sandbox.server import Request, Response, Route, VendorApp, VendorError, dumps
from integration_assets.sandbox.store import Collection, Record

OBJECT_TYPES = ("companies", "contacts", "deals")
SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal"}
PLURAL = {**{s: p for p, s in SINGULAR.items()}, **{p: p for p in OBJECT_TYPES}}
MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
# HubSpot always returns these, whatever `properties` asks for.
ALWAYS = {t: ("createdate", MODIFIED[t], "hs_object_id") for t in OBJECT_TYPES}
SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
}
DATE_PROPERTIES = frozenset(
    {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "hs_createdate", "archivedAt"}
)
NUMBER_PROPERTIES = frozenset(
    {
        "amount",
        "hs_object_id",
        "associatedcompanyid",
        "numberofemployees",
        "annualrevenue",
        "hs_deal_stage_probability",
    }
)
UNIQUE_PROPERTIES = {"contacts": "email"}

PUBLIC = "public"  # Route.scope of the routes HubSpot serves without a bearer token (OAuth)
OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_REFRESH_TOKEN = (
    "sandbox-client",
    "sandbox-secret",
    "refresh-sandbox",
)
OAUTH_TTL_S = 1800
HUB_ID, APP_ID = 4_242_424, 1_234_567
LIST_MAX, SEARCH_MAX, SEARCH_WINDOW, BATCH_MAX, ASSOCIATIONS_MAX = 100, 200, 10_000, 100, 500
MAX_FILTER_GROUPS, MAX_FILTERS = 5, 18
RATE_DEFAULT = (190, 10.0)  # Pro/Enterprise private app: 190 requests per 10 s

# (from, to) -> (unlabeled type id, primary type id or None); HubSpot-defined association types.
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
}
TYPE_TARGET = {(pair[0], type_id): pair[1] for pair, ids in ASSOCIATION_TYPES.items() for type_id in ids if type_id}
PRIMARY_IDS = frozenset(ids[1] for ids in ASSOCIATION_TYPES.values() if ids[1])

DEAL_STAGES = (  # default pipeline: id, label, probability, closed
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
)
OPEN_STAGES = tuple(s[0] for s in DEAL_STAGES if s[3] == "false")
LIFECYCLE_GROUPS = (
    ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead"),
    ("salesqualifiedlead", "opportunity"),
    ("customer", "evangelist"),
)
PIPELINE_CREATED = "2019-01-01T00:00:00.000Z"
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_EPOCH_MS = re.compile(r"-?\d+")
_ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?")
_TOKEN_SPLIT = re.compile(r"[\s,;:/()\[\]<>\"']+")


# -- values --------------------------------------------------------------------------------------------
def iso(ts: float) -> str:
    """HubSpot's timestamp format: 2026-03-04T05:06:07.123Z."""
    ms = round(ts * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=1 << 17)
def instant_ms(text: str | None) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp, a date, or epoch-ms text; None if it is none of them."""
    if text is None:
        return None
    text = str(text).strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    if not _ISO_LIKE.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _string(value: Any) -> str:
    """HubSpot stores every property value as a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() == "true"


def _names(values: Iterable[str]) -> list[str]:
    """Repeated and comma-joined parameter values, in order, without repeats."""
    seen: dict[str, None] = {}
    for value in values:
        for name in str(value).split(","):
            if name.strip():
                seen.setdefault(name.strip(), None)
    return list(seen)


def _kind(name: str) -> str:
    return "date" if name in DATE_PROPERTIES else "number" if name in NUMBER_PROPERTIES else "auto"


def _typed(kind: str, value: Any) -> tuple[int, Any] | None:
    """A comparable form of a property value: (0, number) for dates and numbers, (1, text) for text."""
    if value is None:
        return None
    if kind == "date":
        moment = instant_ms(value)
        return (0, moment) if moment is not None else (1, str(value).casefold())
    number = _number(value)
    if number is not None:
        return (0, number)
    if kind == "auto":
        moment = instant_ms(value)
        if moment is not None:
            return (0, moment)
    return (1, str(value).casefold())


def _tokens(value: str) -> set[str]:
    text = value.casefold()
    found = {t for t in _TOKEN_SPLIT.split(text) if t}
    for token in list(found):
        found.update(p for p in re.split(r"[@.\-_+]", token) if p)
    found.add(text)
    return found


class _Versioned(Collection):
    """A Collection that counts its changes, so indexes and cached searches know when to rebuild."""

    version = 0

    def put(self, record: Record) -> None:
        super().put(record)
        self.version += 1

    def remove(self, record_id: Any) -> Record | None:
        removed = super().remove(record_id)
        self.version += 1
        return removed


class HubSpotApp(VendorApp):
    vendor = "hubspot"
    object_types = OBJECT_TYPES
    request_id_header = "X-HubSpot-Correlation-Id"

    def __init__(self, dataset_dir, sandbox) -> None:
        self._local = threading.local()
        super().__init__(dataset_dir, sandbox)
        self._next_id: dict[str, int] = {}
        for object_type, collection in self.collections.items():
            self._next_id[object_type] = 1 + max((int(r["id"]) for r in collection), default=1000)
        self._unique: dict[str, tuple[int, dict[str, str]]] = {}  # type -> (collection version, value -> id)
        self._graph: tuple[tuple[int, ...], dict] | None = None
        self._searches: OrderedDict[tuple, tuple[int, list[str]]] = OrderedDict()

    # -- what the framework asks of a vendor ---------------------------------------------------------------
    def make_collection(self, object_type: str, records: list[Record]) -> Collection:
        # Count changes made through any path: these handlers, /__sandbox__/mutate, inspection writes.
        return _Versioned(object_type, records, order_key=self.order_key(object_type))

    def build_routes(self) -> list[Route]:
        routes: list[Route] = []
        for t in self.object_types:
            read, write, base = f"crm.objects.{t}.read", f"crm.objects.{t}.write", f"/crm/v3/objects/{t}"

            def bind(handler: Callable[[str, Request], Response], object_type: str = t):
                return _unquoting(functools.partial(handler, object_type))

            routes += [
                Route("GET", base, bind(self._list), read),
                Route("GET", base + "/{id}", bind(self._read), read),
                Route("POST", base + "/search", bind(self._search), read),
                Route("POST", base, bind(self._create), write),
                Route("PATCH", base + "/{id}", bind(self._update), write),
                Route("DELETE", base + "/{id}", bind(self._archive), write),
                Route("POST", base + "/batch/read", bind(self._batch_read), read),
                Route("POST", base + "/batch/create", bind(self._batch_create), write),
                Route("POST", base + "/batch/update", bind(self._batch_update), write),
                Route("POST", base + "/batch/upsert", bind(self._batch_upsert), write),
                Route("POST", base + "/batch/archive", bind(self._batch_archive), write),
                Route(
                    "GET",
                    f"/crm/v4/objects/{t}/{{id}}/associations/{{toType}}",
                    bind(self._associations),
                    read,
                ),
                Route("GET", f"/crm/v3/properties/{t}", bind(self._properties), read),
            ]
        routes += [
            Route("GET", "/crm/v3/pipelines/deals", self._pipelines, "crm.objects.deals.read"),
            Route(
                "GET",
                "/crm/v3/pipelines/deals/{pipelineId}",
                _unquoting(self._pipeline),
                "crm.objects.deals.read",
            ),
            Route("POST", "/oauth/v1/token", self._oauth_token, PUBLIC),
            Route("GET", "/oauth/v1/access-tokens/{token}", _unquoting(self._oauth_token_info), PUBLIC),
        ]
        return routes

    def order_key(self, object_type: str) -> Callable[[Record], Any]:
        return lambda record: int(record["id"])

    def default_grants(self) -> list[Grant]:
        return [Grant(token="pat-sandbox"), Grant(token="oauth-sandbox", refresh_token=OAUTH_REFRESH_TOKEN)]

    def coerce_id(self, object_type: str, raw: str) -> str:
        return str(raw)

    def new_request_id(self) -> str:
        digits = f"{random.getrandbits(128):032x}"  # uuid4's shape at a fraction of uuid.uuid4()'s cost
        request_id = f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{digits[16:20]}-{digits[20:]}"
        self._local.request_id = request_id  # error bodies on this thread carry it as correlationId
        return request_id

    def authenticate(self, request: Request, route: Route) -> Grant:
        if route.scope == PUBLIC:
            return Grant(token="anonymous")
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        grant = self.credentials.lookup(token.strip()) if scheme.lower() == "bearer" else None
        failure = {"x-hubspot-auth-failure": "401 Unauthorized"}
        if grant is None:
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
            raise self._fail(request, 401, "INVALID_AUTHENTICATION", message, headers=failure)
        now = time.time()
        if grant.expired(now):
            ago = int(now - grant.expires_at)
            message = f"The OAuth token used to make this call expired {ago} second(s) ago."
            raise self._fail(request, 401, "EXPIRED_AUTHENTICATION", message, headers=failure)
        if not grant.allows(route.scope):
            raise self._fail(
                request,
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. "
                "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredScopes": [route.scope]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )
        return grant

    def error(self, status: int, message: str) -> Response:
        category = {400: "VALIDATION_ERROR", 404: "OBJECT_NOT_FOUND", 409: "CONFLICT"}.get(status, "INTERNAL_ERROR")
        request_id = getattr(self._local, "request_id", None) or str(uuid.uuid4())
        body = {"status": "error", "message": message, "correlationId": request_id, "category": category}
        return Response(status, body, {self.request_id_header: request_id})

    def rate_limited(self, verdict: Verdict) -> Response:
        request_id = getattr(self._local, "request_id", None) or str(uuid.uuid4())
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": request_id,
            "policyName": "TEN_SECONDLY_ROLLING",
        }
        return Response(429, body, {**self.rate_headers(verdict), self.request_id_header: request_id})

    def rate_headers(self, verdict: Verdict) -> dict[str, str]:
        limit, window_s = verdict.limit, verdict.window_s
        if not limit:  # an injected 429: report the configured (or HubSpot's usual) policy
            rule = self.settings.rate_limit
            limit, window_s = (rule.requests, rule.per_seconds) if rule else RATE_DEFAULT
        return {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(verdict.remaining if verdict.allowed else 0),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window_s * 1000)),
        }

    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        """A plausible user edit that leaves planted defects (email, phone, date, amount, stage) alone."""
        props = dict(record.get("properties") or {})
        if object_type == "contacts":
            phone = props.get("phone") or ""
            group = next((g for g in LIFECYCLE_GROUPS if props.get("lifecyclestage") in g), None)
            if group and (rng.random() < 0.5 or not _mutable_phone(phone)):
                props["lifecyclestage"] = rng.choice([s for s in group if s != props["lifecyclestage"]])
            elif _mutable_phone(phone):
                last = phone[-1]
                props["phone"] = phone[:-1] + rng.choice([d for d in "0123456789" if d != last])
            else:
                props["lifecyclestage"] = rng.choice(("lead", "subscriber"))
        elif object_type == "companies":
            props["industry"] = rng.choice([i for i in INDUSTRIES if i != props.get("industry")])
        else:
            stage, amount = props.get("dealstage"), _number(props.get("amount"))
            if stage in OPEN_STAGES and rng.random() < 0.5:
                props["dealstage"] = rng.choice([s for s in OPEN_STAGES if s != stage])
            elif stage != "closedwon" and amount is not None and amount >= 0:
                delta = 250 * rng.randint(1, 20)
                amount = amount + delta if amount < delta or rng.random() < 0.5 else amount - delta
                props["amount"] = f"{amount:.2f}" if "." in props["amount"] else str(int(amount))
            else:  # won deals are invoiced: leave amount and stage alone
                props["hs_priority"] = rng.choice(
                    [p for p in ("low", "medium", "high") if p != props.get("hs_priority")]
                )
        return self._touched(object_type, {**record, "properties": props}, now)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        record = self.collections[object_type].get(str(record_id))
        if record is None or record.get("archived"):
            return record
        stamp = iso(now)
        archived = {**record, "archived": True, "archivedAt": stamp, "updatedAt": stamp}
        self._save(object_type, archived)
        return archived

    # -- reading ---------------------------------------------------------------------------------------------
    def _list(self, object_type: str, request: Request) -> Response:
        limit = self._int(request, request.arg("limit"), "limit", 10)
        limit = max(1, min(limit, LIST_MAX))
        archived = _flag(request.arg("archived"))
        collection = self.collections[object_type]
        after = request.arg("after")
        start = 0 if not after else collection.index_past_key(self._int(request, after, "after", 0))
        page, resume = collection.scan(start, limit, lambda r: bool(r.get("archived")) == archived)
        view, shape = self._view(object_type, request.args("properties"), request.args("associations"))
        body = b'{"results":' + self.render_list(object_type, page, view, shape)
        if resume is not None and page:
            cursor = page[-1]["id"]
            link = f"{request.base_url}{request.path}?limit={limit}&after={cursor}"
            if archived:
                link += "&archived=true"
            body += b',"paging":{"next":' + dumps({"after": cursor, "link": link}) + b"}"
        return Response(200, body + b"}")

    def _read(self, object_type: str, request: Request) -> Response:
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is None or bool(record.get("archived")) != _flag(request.arg("archived")):
            raise self._not_found(request, object_type, request.params["id"])
        view, shape = self._view(object_type, request.args("properties"), request.args("associations"))
        return Response(200, self.render(object_type, record, view, shape))

    def _search(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        limit = self._int(request, body.get("limit"), "limit", 10)
        offset = self._int(request, body.get("after"), "after", 0)
        if not 0 < limit <= SEARCH_MAX:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_MAX}.")
        if offset + limit > SEARCH_WINDOW:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {SEARCH_WINDOW} results per query: after ({offset}) plus "
                f"limit ({limit}) reaches past {SEARCH_WINDOW}. Narrow the filters, e.g. restart from the "
                "last modification date seen.",
            )
        ids = self._matches(object_type, body, request)
        collection = self.collections[object_type]
        page = [collection.get(i) for i in ids[offset : offset + limit]]
        view, shape = self._view(object_type, body.get("properties") or [], [])
        out = b'{"total":%d,"results":' % len(ids) + self.render_list(object_type, page, view, shape)
        if offset + limit < len(ids):
            out += b',"paging":{"next":{"after":"%d"}}' % (offset + limit)
        return Response(200, out + b"}")

    def _matches(self, object_type: str, body: dict, request: Request) -> list[str]:
        """Ids of the live records a search body selects, in order (cached until the collection changes)."""
        groups, sorts, query = body.get("filterGroups") or [], body.get("sorts") or [], body.get("query")
        key = (object_type, json.dumps([groups, sorts, query], sort_keys=True, default=str))
        collection = self.collections[object_type]
        cached = self._searches.get(key)
        if cached is not None and cached[0] == collection.version:
            self._searches.move_to_end(key)
            return cached[1]
        keep = self._criteria(object_type, groups, query, request)
        found = [r for r in collection if not r.get("archived") and keep(r)]
        for name, descending in reversed(self._sorts(sorts, request)):
            kind = _kind(name)
            present = [r for r in found if _value(r, name) is not None]
            missing = [r for r in found if _value(r, name) is None]
            present.sort(key=lambda r, n=name, k=kind: _typed(k, _value(r, n)), reverse=descending)
            found = present + missing
        ids = [r["id"] for r in found]
        self._searches[key] = (collection.version, ids)
        while len(self._searches) > 32:
            self._searches.popitem(last=False)
        return ids

    def _criteria(self, object_type: str, groups: Any, query: Any, request: Request) -> Callable[[Record], bool]:
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise self._fail(request, 400, "VALIDATION_ERROR", "filterGroups must be a list of objects.")
        filters = [g.get("filters") or [] for g in groups]
        if len(groups) > MAX_FILTER_GROUPS or sum(len(f) for f in filters) > MAX_FILTERS:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"A search may have at most {MAX_FILTER_GROUPS} filterGroups and {MAX_FILTERS} filters.",
            )
        compiled = [[self._filter(f, request) for f in group] for group in filters]
        text = str(query).strip().casefold() if query else ""
        searchable = SEARCHABLE[object_type]

        def keep(record: Record) -> bool:
            if text and not any(text in str(_value(record, n) or "").casefold() for n in (*searchable, "hs_object_id")):
                return False
            return not compiled or any(all(test(record) for test in group) for group in compiled)

        return keep

    def _filter(self, spec: Any, request: Request) -> Callable[[Record], bool]:
        if not isinstance(spec, dict) or not spec.get("propertyName"):
            raise self._fail(request, 400, "VALIDATION_ERROR", "Each filter needs a propertyName and an operator.")
        name, operator = spec["propertyName"], str(spec.get("operator") or "EQ").upper()
        if operator not in OPERATORS:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Invalid operator {operator!r}: use one of {', '.join(sorted(OPERATORS))}.",
            )
        kind = _kind(name)

        def typed(value: Any) -> tuple[int, Any] | None:
            return _typed(kind, value)

        if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            wanted = operator == "HAS_PROPERTY"
            return lambda r: (_value(r, name) not in (None, "")) == wanted
        if operator in ("IN", "NOT_IN"):
            values = spec.get("values")
            if not isinstance(values, list):
                raise self._fail(request, 400, "VALIDATION_ERROR", f"{operator} needs a list of values.")
            options = {typed(_string(v)) for v in values}
            inside = operator == "IN"
            return lambda r: (typed(_value(r, name)) in options) == inside
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = _string(spec.get("value")).casefold()
            wanted = operator == "CONTAINS_TOKEN"

            def contains(record: Record) -> bool:
                value = _value(record, name)
                if value is None:
                    return False
                return any(fnmatch.fnmatchcase(token, pattern) for token in _tokens(str(value)))

            return lambda r: contains(r) == wanted
        if "value" not in spec:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Operator {operator} needs a value.")
        low = typed(_string(spec.get("value")))
        if operator == "BETWEEN":
            high = typed(_string(spec.get("highValue")))
            return lambda r: _between(typed(_value(r, name)), low, high)
        if operator in ("EQ", "NEQ"):
            wanted = operator == "EQ"
            return lambda r: (typed(_value(r, name)) == low) == wanted
        compare = {
            "LT": lambda a: a < low,
            "LTE": lambda a: a <= low,
            "GT": lambda a: a > low,
            "GTE": lambda a: a >= low,
        }[operator]

        def ordered(record: Record) -> bool:
            value = typed(_value(record, name))
            return value is not None and value[0] == low[0] and compare(value)

        return ordered

    def _sorts(self, sorts: Any, request: Request) -> list[tuple[str, bool]]:
        """`sorts` as ["prop", "-prop"] or [{"propertyName", "direction"}] → [(name, descending)]."""
        if not isinstance(sorts, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "sorts must be a list.")
        result = []
        for sort in sorts:
            if isinstance(sort, str) and sort.strip():
                text = sort.strip()
                if text.startswith("{"):  # the SDK's `sorts: list[str]` invites JSON-encoded sort objects
                    try:
                        sort = json.loads(text)
                    except ValueError:
                        sort = text
                if isinstance(sort, str):
                    result.append((text.lstrip("-+"), text.startswith("-")))
                    continue
            if isinstance(sort, dict) and sort.get("propertyName"):
                descending = str(sort.get("direction") or "ASCENDING").upper().startswith("DESC")
                result.append((sort["propertyName"], descending))
            else:
                raise self._fail(request, 400, "VALIDATION_ERROR", f"Invalid sort {sort!r}.")
        return result

    def _associations(self, object_type: str, request: Request) -> Response:
        """v4: `{"results":[{"toObjectId", "associationTypes":[{category, typeId, label}]}], "paging"?}`."""
        record = self.collections[object_type].get(request.params["id"])
        if record is None or record.get("archived"):
            raise self._not_found(request, object_type, request.params["id"])
        to_type = PLURAL.get(request.params["toType"].lower())
        if to_type is None:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Unknown object type {request.params['toType']!r}.")
        limit = max(1, min(self._int(request, request.arg("limit"), "limit", ASSOCIATIONS_MAX), ASSOCIATIONS_MAX))
        offset = self._int(request, request.arg("after"), "after", 0)
        links = self._links(object_type, record["id"], to_type)
        page = [
            {
                "toObjectId": int(to_id),
                "associationTypes": [
                    {
                        "category": "HUBSPOT_DEFINED",
                        "typeId": t,
                        "label": "Primary" if t in PRIMARY_IDS else None,
                    }
                    for t in type_ids
                ],
            }
            for to_id, type_ids in links[offset : offset + limit]
        ]
        body: dict[str, Any] = {"results": page}
        if offset + limit < len(links):
            after = str(offset + limit)
            link = f"{request.base_url}{request.path}?limit={limit}&after={after}"
            body["paging"] = {"next": {"after": after, "link": link}}
        return Response(200, body)

    def _properties(self, object_type: str, request: Request) -> Response:
        """Property definitions: the defaults plus every property the records carry."""
        names = dict.fromkeys(DEFAULT_PROPERTIES[object_type])
        for record in self.collections[object_type]:
            names.update(dict.fromkeys(record.get("properties") or {}))
        results = []
        for order, name in enumerate(sorted(names)):
            kind = _kind(name)
            type_, field = {"date": ("datetime", "date"), "number": ("number", "number")}.get(kind, ("string", "text"))
            options = []
            if name == "dealstage":
                type_, field = "enumeration", "select"
                options = [
                    {"label": label, "value": stage, "displayOrder": i, "hidden": False}
                    for i, (stage, label, _, _) in enumerate(DEAL_STAGES)
                ]
            results.append(
                {
                    "name": name,
                    "label": name.replace("hs_", "").replace("_", " ").capitalize(),
                    "type": type_,
                    "fieldType": field,
                    "groupName": f"{SINGULAR[object_type]}information",
                    "description": "",
                    "options": options,
                    "displayOrder": order,
                    "calculated": False,
                    "externalOptions": False,
                    "hasUniqueValue": name in ("hs_object_id", UNIQUE_PROPERTIES.get(object_type)),
                    "hidden": False,
                    "formField": True,
                    "createdAt": PIPELINE_CREATED,
                    "updatedAt": PIPELINE_CREATED,
                    "archived": False,
                    "modificationMetadata": {
                        "archivable": name not in DEFAULT_PROPERTIES[object_type],
                        "readOnlyDefinition": name in DEFAULT_PROPERTIES[object_type],
                        "readOnlyValue": name in ("hs_object_id", "createdate", MODIFIED[object_type]),
                    },
                }
            )
        return Response(200, {"results": results})

    def _pipelines(self, request: Request) -> Response:
        return Response(200, {"results": [_default_pipeline()]})

    def _pipeline(self, request: Request) -> Response:
        if request.params["pipelineId"] != "default":
            raise self._fail(request, 404, "OBJECT_NOT_FOUND", f"Pipeline {request.params['pipelineId']} not found.")
        return Response(200, _default_pipeline())

    # -- writing ---------------------------------------------------------------------------------------------
    def _create(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        record = self._new(object_type, body, request, time.time(), pending={})
        self._save(object_type, record)
        return Response(201, self._render_full(object_type, record))

    def _update(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is None or record.get("archived"):
            raise self._not_found(request, object_type, request.params["id"])
        updated = self._changed(object_type, record, body.get("properties"), request, time.time())
        self._save(object_type, updated)
        return Response(200, self._render_full(object_type, updated))

    def _archive(self, object_type: str, request: Request) -> Response:
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is not None:
            self.delete(object_type, record["id"], time.time())
        return Response(204)

    def _batch_read(self, object_type: str, request: Request) -> Response:
        body, inputs = self._batch(request)
        started, archived = iso(time.time()), _flag(request.arg("archived"))
        view, shape = self._view(object_type, body.get("properties") or [], [])
        found, missing = [], []
        for item in inputs:
            raw = _string(item.get("id") if isinstance(item, dict) else item)
            record = self._find(object_type, raw, body.get("idProperty"))
            if record is None or bool(record.get("archived")) != archived:
                missing.append(raw)
            else:
                found.append(self.render(object_type, record, view, shape))
        errors = [self._missing_error(object_type, missing, "get")] if missing else []
        return self._batch_response(200, found, errors, started)

    def _batch_create(self, object_type: str, request: Request) -> Response:
        _, inputs = self._batch(request)
        started, now, pending = iso(time.time()), time.time(), {}
        records = []
        for item in inputs:
            record = self._new(object_type, item if isinstance(item, dict) else {}, request, now, pending)
            pending[record["id"]] = record
            records.append(record)
        for record in records:
            self._save(object_type, record)
        rendered = [self._render_full(object_type, r) for r in records]
        return self._batch_response(201, rendered, [], started)

    def _batch_update(self, object_type: str, request: Request) -> Response:
        body, inputs = self._batch(request)
        started, now = iso(time.time()), time.time()
        done, missing = [], []
        for item in inputs:
            item = item if isinstance(item, dict) else {}
            raw = _string(item.get("id"))
            record = self._find(object_type, raw, item.get("idProperty") or body.get("idProperty"))
            if record is None or record.get("archived"):
                missing.append(raw)
                continue
            updated = self._changed(object_type, record, item.get("properties"), request, now)
            self._save(object_type, updated)
            done.append(self._render_full(object_type, updated))
        errors = [self._missing_error(object_type, missing, "update")] if missing else []
        return self._batch_response(200, done, errors, started)

    def _batch_upsert(self, object_type: str, request: Request) -> Response:
        """Update the record whose `idProperty` equals `id`, else create it with that value."""
        _, inputs = self._batch(request)
        started, now = iso(time.time()), time.time()
        keys = [
            (_string(i.get("idProperty") or "hs_object_id"), _string(i.get("id")))
            for i in inputs
            if isinstance(i, dict)
        ]
        repeated = sorted({v for k, v in keys if keys.count((k, v)) > 1})
        if len(keys) != len(inputs) or repeated:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {repeated}.")
        done, missing = [], []
        for item, (id_property, raw) in zip(inputs, keys, strict=True):
            record = self._find(object_type, raw, id_property)
            if record is not None and not record.get("archived"):
                updated, new = self._changed(object_type, record, item.get("properties"), request, now), False
            elif id_property == "hs_object_id":
                missing.append(raw)
                continue
            else:
                properties = {**(item.get("properties") or {}), id_property: raw}
                updated, new = self._new(object_type, {"properties": properties}, request, now, {}), True
            self._save(object_type, updated)
            done.append(self.render(object_type, updated, ("upsert", new), self._upsert_shape(object_type, new)))
        errors = [self._missing_error(object_type, missing, "update")] if missing else []
        return self._batch_response(200, done, errors, started)

    def _batch_archive(self, object_type: str, request: Request) -> Response:
        _, inputs = self._batch(request)
        now = time.time()
        for item in inputs:
            raw = _string(item.get("id") if isinstance(item, dict) else item)
            if self.collections[object_type].get(raw) is not None:
                self.delete(object_type, raw, now)
        return Response(204)

    def _new(self, object_type: str, body: dict, request: Request, now: float, pending: dict) -> Record:
        """A record to create from `{"properties", "associations"}`, checked but not stored yet."""
        given = body.get("properties") if isinstance(body, dict) else None
        if given is not None and not isinstance(given, dict):
            raise self._fail(request, 400, "VALIDATION_ERROR", "properties must be an object of property values.")
        props = {k: _string(v) for k, v in (given or {}).items() if k not in ("hs_object_id", MODIFIED[object_type])}
        self._check_unique(object_type, props, None, request, pending)
        collection = self.collections[object_type]
        number = self._next_id[object_type]
        while collection.get(str(number)) is not None or str(number) in pending:
            number += 1
        self._next_id[object_type] = number + 1
        record_id, stamp = str(number), iso(now)
        props.setdefault("createdate", stamp)
        props.update({"hs_object_id": record_id, MODIFIED[object_type]: stamp})
        record: Record = {
            "id": record_id,
            "properties": props,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        associations = self._new_associations(object_type, body.get("associations"), request, pending)
        if associations:
            record["associations"] = associations
            companies = associations.get("companies", {}).get("results", [])
            primary = [c["id"] for c in companies if not c["type"].endswith("_unlabeled")]
            if object_type == "contacts" and primary and not props.get("associatedcompanyid"):
                props["associatedcompanyid"] = primary[0]
        return record

    def _new_associations(self, object_type: str, specs: Any, request: Request, pending: dict) -> dict:
        """`[{"to": {"id"}, "types": [{"associationCategory", "associationTypeId"}]}]` → stored v3 shape."""
        if not specs:
            return {}
        if not isinstance(specs, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "associations must be a list.")
        stored: dict[str, dict[str, list]] = {}
        for spec in specs:
            to_id = _string(((spec or {}).get("to") or {}).get("id"))
            for kind in (spec or {}).get("types") or []:
                type_id = _number((kind or {}).get("associationTypeId"))
                to_type = TYPE_TARGET.get((object_type, int(type_id))) if type_id is not None else None
                if to_type is None:
                    raise self._fail(
                        request,
                        400,
                        "VALIDATION_ERROR",
                        f"associationTypeId {kind.get('associationTypeId')!r} is invalid from {object_type}.",
                    )
                target = self.collections[to_type].get(to_id)
                if target is None or target.get("archived"):
                    raise self._fail(request, 400, "VALIDATION_ERROR", f"No {SINGULAR[to_type]} with id {to_id}.")
                label = _type_label(object_type, to_type, int(type_id))
                results = stored.setdefault(to_type, {"results": []})["results"]
                if {"id": to_id, "type": label} not in results:
                    results.append({"id": to_id, "type": label})
        return stored

    def _changed(self, object_type: str, record: Record, given: Any, request: Request, now: float) -> Record:
        if not isinstance(given, dict):
            raise self._fail(request, 400, "VALIDATION_ERROR", "properties must be an object of property values.")
        changes = {
            k: _string(v) for k, v in given.items() if k not in ("hs_object_id", "createdate", MODIFIED[object_type])
        }
        self._check_unique(object_type, changes, record["id"], request, {})
        props = {**(record.get("properties") or {}), **changes}
        return self._touched(object_type, {**record, "properties": props}, now)

    def _check_unique(self, object_type: str, props: dict, own_id: str | None, request: Request, pending: dict) -> None:
        name = UNIQUE_PROPERTIES.get(object_type)
        value = props.get(name) if name else None
        if not value:
            return
        existing = self._find(object_type, value, name)
        if existing is not None and existing["id"] != own_id and not existing.get("archived"):
            raise self._fail(request, 409, "CONFLICT", f"Contact already exists. Existing ID: {existing['id']}")
        if any(_string((p.get("properties") or {}).get(name)).casefold() == value.casefold() for p in pending.values()):
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Duplicate {name} {value!r} in batch input.")

    def _touched(self, object_type: str, record: Record, now: float) -> Record:
        stamp = iso(now)
        props = {**(record.get("properties") or {}), MODIFIED[object_type]: stamp}
        return {**record, "properties": props, "updatedAt": stamp}

    def _save(self, object_type: str, record: Record) -> None:
        """Stores a record, keeping the unique-property index current without a rebuild."""
        collection = self.collections[object_type]
        name = UNIQUE_PROPERTIES.get(object_type)
        index = self._unique.get(object_type)
        in_step = index is not None and index[0] == collection.version
        if name and in_step:
            values = index[1]
            old = collection.get(record["id"])
            old_value = _string(((old or {}).get("properties") or {}).get(name)).casefold()
            if old_value and values.get(old_value) == record["id"]:
                del values[old_value]
            new_value = _string((record.get("properties") or {}).get(name)).casefold()
            if new_value and (not record.get("archived") or values.get(new_value) in (None, record["id"])):
                values[new_value] = record["id"]
        self.store(object_type, record)
        if name and in_step:
            self._unique[object_type] = (collection.version, index[1])

    # -- finding ---------------------------------------------------------------------------------------------
    def _find(self, object_type: str, raw: str, id_property: str | None) -> Record | None:
        """The record whose id (or `id_property`, e.g. email) is `raw`."""
        collection = self.collections[object_type]
        if not id_property or id_property == "hs_object_id":
            return collection.get(str(raw))
        wanted = str(raw).casefold()
        if id_property == UNIQUE_PROPERTIES.get(object_type):
            index = self._unique.get(object_type)
            if index is None or index[0] != collection.version:
                values = {}
                for record in collection:
                    value = _string((record.get("properties") or {}).get(id_property)).casefold()
                    if value and (value not in values or not record.get("archived")):
                        values[value] = record["id"]
                index = self._unique[object_type] = (collection.version, values)
            found = index[1].get(wanted)
            return collection.get(found) if found else None
        matches = [r for r in collection if _string((r.get("properties") or {}).get(id_property)).casefold() == wanted]
        live = [r for r in matches if not r.get("archived")]
        return (live or matches or [None])[0]

    def _links(self, object_type: str, record_id: str, to_type: str) -> list[tuple[str, list[int]]]:
        """Live records of `to_type` associated with a record, by numeric id, with their type ids."""
        found = self._association_graph().get((object_type, record_id, to_type), {})
        target = self.collections[to_type]
        live = [(i, sorted(t)) for i, t in found.items() if (r := target.get(i)) is not None and not r.get("archived")]
        return sorted(live, key=lambda pair: int(pair[0]))

    def _association_graph(self) -> dict[tuple[str, str, str], dict[str, set[int]]]:
        """(from type, from id, to type) → {to id: type ids}, from stored links and associatedcompanyid."""
        version = tuple(self.collections[t].version for t in OBJECT_TYPES)
        if self._graph is not None and self._graph[0] == version:
            return self._graph[1]
        graph: dict[tuple[str, str, str], dict[str, set[int]]] = {}

        def link(a_type: str, a_id: str, b_type: str, b_id: str, primary: bool) -> None:
            for (x_type, x_id), (y_type, y_id) in (
                ((a_type, a_id), (b_type, b_id)),
                ((b_type, b_id), (a_type, a_id)),
            ):
                unlabeled, primary_id = ASSOCIATION_TYPES[(x_type, y_type)]
                types = graph.setdefault((x_type, x_id, y_type), {}).setdefault(y_id, set())
                types.add(unlabeled)
                if primary and primary_id:
                    types.add(primary_id)

        for object_type in OBJECT_TYPES:
            for record in self.collections[object_type]:
                for to_type, entries in _stored_associations(record):
                    for to_id, label in entries:
                        if (object_type, to_type) in ASSOCIATION_TYPES:
                            link(object_type, record["id"], to_type, to_id, not label.endswith("_unlabeled"))
                company = (record.get("properties") or {}).get("associatedcompanyid")
                if object_type == "contacts" and company:
                    link("contacts", record["id"], "companies", str(company), True)
        self._graph = (version, graph)
        return graph

    # -- rendering -------------------------------------------------------------------------------------------
    def _view(self, object_type: str, properties: Any, associations: Any) -> tuple[Any, Callable[[Record], dict]]:
        """The cache key and shape function for a property selection and association list."""
        if isinstance(properties, str):
            properties = [properties]
        names = _names(properties or []) or list(DEFAULT_PROPERTIES[object_type])
        names = tuple(dict.fromkeys([*names, *ALWAYS[object_type]]))
        if isinstance(associations, str):
            associations = [associations]
        to_types = tuple(dict.fromkeys(PLURAL[a.lower()] for a in _names(associations or []) if a.lower() in PLURAL))
        graph_version = tuple(self.collections[t].version for t in OBJECT_TYPES) if to_types else None
        return ("props", names, to_types, graph_version), self._shape(object_type, names, to_types)

    def _shape(self, object_type: str, names: tuple[str, ...] | None, to_types: tuple[str, ...] = ()):
        def shape(record: Record) -> dict:
            props = record.get("properties") or {}
            chosen = dict(props) if names is None else {n: props.get(n) for n in names}
            if "hs_object_id" in chosen and chosen["hs_object_id"] is None:
                chosen["hs_object_id"] = record["id"]
            out = {
                "id": record["id"],
                "properties": chosen,
                "createdAt": record.get("createdAt") or props.get("createdate"),
                "updatedAt": record.get("updatedAt") or props.get(MODIFIED[object_type]),
                "archived": bool(record.get("archived")),
            }
            if out["archived"]:
                out["archivedAt"] = record.get("archivedAt") or out["updatedAt"]
            links = {}
            for to_type in to_types:
                results = [
                    {"id": to_id, "type": _type_label(object_type, to_type, t)}
                    for to_id, type_ids in self._links(object_type, record["id"], to_type)
                    for t in sorted(type_ids, key=lambda i: i not in PRIMARY_IDS)
                ]
                if results:
                    links[to_type] = {"results": results}
            if links:
                out["associations"] = links
            return out

        return shape

    def _render_full(self, object_type: str, record: Record) -> bytes:
        return self.render(object_type, record, ("all",), self._shape(object_type, None))

    def _upsert_shape(self, object_type: str, new: bool) -> Callable[[Record], dict]:
        full = self._shape(object_type, None)
        return lambda record: {**full(record), "new": new}

    def _batch_response(self, status: int, rendered: list[bytes], errors: list[dict], started: str) -> Response:
        out = b'{"status":"COMPLETE","results":[' + b",".join(rendered) + b"]"
        if errors:
            status = 207
            out += b',"numErrors":%d,"errors":' % len(errors) + dumps(errors)
        out += b',"startedAt":"' + started.encode() + b'","completedAt":"' + iso(time.time()).encode() + b'"}'
        return Response(status, out)

    def _missing_error(self, object_type: str, ids: list[str], verb: str) -> dict:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not {verb} some {SINGULAR[object_type].upper()} objects, they may be deleted "
            "or not exist. Check that ids are valid.",
            "context": {"ids": ids},
            "errors": [],
            "links": {},
        }

    # -- OAuth -----------------------------------------------------------------------------------------------
    def _oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return self._oauth_error(400, "BAD_GRANT_TYPE", "grant_type must be refresh_token in the sandbox")
        if form.get("client_id") != OAUTH_CLIENT_ID:
            return self._oauth_error(400, "BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != OAUTH_CLIENT_SECRET:
            return self._oauth_error(400, "BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant = self.credentials.mint(form.get("refresh_token") or "", OAUTH_TTL_S)
        if grant is None:
            return self._oauth_error(400, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        expires_in = max(0, round(grant.expires_at - time.time()))
        body = {
            "token_type": "bearer",
            "refresh_token": grant.refresh_token,
            "access_token": grant.token,
            "expires_in": expires_in,
        }
        return Response(200, body)

    def _oauth_token_info(self, request: Request) -> Response:
        token = request.params["token"]
        grant = self.credentials.lookup(token)
        if grant is None:
            return self._oauth_error(404, "NOT_FOUND", f"Token {quote(token)} not found")
        remaining = 10 * 365 * 86_400 if grant.expires_at is None else max(0, int(grant.expires_at - time.time()))
        if grant.scopes is None:
            scopes = ["oauth", *(f"crm.objects.{t}.{a}" for t in OBJECT_TYPES for a in ("read", "write"))]
        else:
            scopes = sorted(grant.scopes)
        body = {
            "token": token,
            "user": grant.email or "admin@sandbox.test",
            "hub_domain": "sandbox.hubspot.test",
            "scopes": scopes,
            "hub_id": HUB_ID,
            "app_id": APP_ID,
            "expires_in": remaining,
            "user_id": 1,
            "token_type": "access",
        }
        return Response(200, body)

    def _oauth_error(self, status: int, code: str, message: str) -> Response:
        request_id = getattr(self._local, "request_id", None) or str(uuid.uuid4())
        return Response(status, {"status": code, "message": message, "correlationId": request_id})

    # -- small helpers ---------------------------------------------------------------------------------------
    def _fail(self, request: Request, status: int, category: str, message: str, headers=None, **extra) -> VendorError:
        body = {"status": "error", "message": message, "correlationId": request.request_id, **extra}
        body["category"] = category
        return VendorError(status, body, headers)

    def _not_found(self, request: Request, object_type: str, raw: str) -> VendorError:
        return self._fail(request, 404, "OBJECT_NOT_FOUND", "resource not found", context={"id": [raw]})

    def _body(self, request: Request) -> dict:
        body = request.json()
        if not isinstance(body, dict):
            raise self._fail(request, 400, "VALIDATION_ERROR", "Invalid input JSON: expected an object.")
        return body

    def _batch(self, request: Request) -> tuple[dict, list]:
        body = self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "inputs must be a list.")
        if len(inputs) > BATCH_MAX:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Batch input has {len(inputs)} inputs; at most {BATCH_MAX} allowed.",
            )
        return body, inputs

    def _int(self, request: Request, raw: Any, name: str, default: int) -> int:
        if raw is None or raw == "":
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"{name} must be an integer, got {raw!r}.") from None
        if value < 0:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"{name} must not be negative.")
        return value


def _unquoting(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """The SDK percent-encodes path parameters (an email as `a%40b.example`); the router hands them on raw."""

    def unquoted(request: Request) -> Response:
        request.params = {name: unquote(value) for name, value in request.params.items()}
        return handler(request)

    return unquoted


def _value(record: Record, name: str) -> Any:
    props = record.get("properties") or {}
    value = props.get(name)
    if value is None and name == "hs_object_id":
        return record["id"]
    return value


def _between(value: tuple | None, low: tuple | None, high: tuple | None) -> bool:
    if value is None or low is None or high is None or not value[0] == low[0] == high[0]:
        return False
    return low <= value <= high


def _mutable_phone(phone: str) -> bool:
    return phone.startswith("+") and sum(c.isdigit() for c in phone) >= 8 and phone[-1].isdigit()


def _type_label(from_type: str, to_type: str, type_id: int) -> str:
    name = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"
    unlabeled, primary = ASSOCIATION_TYPES[(from_type, to_type)]
    return f"{name}_unlabeled" if primary and type_id == unlabeled else name


def _stored_associations(record: Record) -> Iterable[tuple[str, list[tuple[str, str]]]]:
    """A record's own `associations` (v3 shape, or plain id lists) as (to type, [(id, type label)])."""
    stored = record.get("associations")
    if not isinstance(stored, dict):
        return
    for key, value in stored.items():
        to_type = PLURAL.get(str(key).lower())
        if to_type is None:
            continue
        items = value.get("results", []) if isinstance(value, dict) else value if isinstance(value, list) else []
        entries = []
        for item in items:
            if isinstance(item, dict) and item.get("id") is not None:
                entries.append((str(item["id"]), str(item.get("type") or "")))
            elif isinstance(item, str | int):
                entries.append((str(item), ""))
        yield to_type, entries


def _default_pipeline() -> dict:
    stages = [
        {
            "id": stage,
            "label": label,
            "displayOrder": order,
            "metadata": {"isClosed": closed, "probability": probability},
            "createdAt": PIPELINE_CREATED,
            "updatedAt": PIPELINE_CREATED,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for order, (stage, label, probability, closed) in enumerate(DEAL_STAGES)
    ]
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": PIPELINE_CREATED,
        "updatedAt": PIPELINE_CREATED,
        "archived": False,
    }
