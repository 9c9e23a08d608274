"""What every HubSpot endpoint shares: the app's state and indexes, auth, errors, lookups and record views."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from integration_sandbox.auth import Grant
from integration_sandbox.credentials import HUBSPOT_ACCESS_TOKEN, HUBSPOT_OAUTH_TOKEN, HUBSPOT_REFRESH_TOKEN
from integration_sandbox.kit import Host, Request, Response, Route, VendorApp, VendorError
from integration_sandbox.ratelimit import Verdict
from integration_sandbox.store import Collection, Record, VersionedCollection
from integration_sandbox.vendors.hubspot.definitions import (
    ALWAYS,
    DEFAULT_PROPERTIES,
    MODIFIED,
    OBJECT_TYPES,
    PLURAL,
    PRIMARY_IDS,
    PUBLIC,
    RATE_DEFAULT,
    UNIQUE_PROPERTIES,
)
from integration_sandbox.vendors.hubspot.graph import AssociationGraph, type_label
from integration_sandbox.vendors.hubspot.values import as_string, iso, name_list


class HubSpotCore(VendorApp):
    """The HubSpot app without its endpoints: each endpoint module adds its own to this."""

    def __init__(self, dataset_dir: Path | None, sandbox: Host) -> None:
        self._local = threading.local()
        super().__init__(dataset_dir, sandbox)
        self._next_id: dict[str, int] = {}
        for object_type, collection in self.collections.items():
            self._next_id[object_type] = 1 + max((int(r["id"]) for r in collection), default=1000)
        self._unique: dict[str, tuple[int, dict[str, str]]] = {}  # type -> (collection version, value -> id)
        self._graph = AssociationGraph(self.collections)  # type: ignore[arg-type]
        self._searches: OrderedDict[tuple, tuple[int, list[str]]] = OrderedDict()

    # -- what the framework asks of a vendor ---------------------------------------------------------------
    def make_collection(self, object_type: str, records: list[Record]) -> Collection:
        # Count changes made through any path: these handlers, /__sandbox__/mutate, inspection writes.
        return VersionedCollection(object_type, records, order_key=self.order_key(object_type))

    def order_key(self, object_type: str) -> Callable[[Record], Any]:
        return lambda record: int(record["id"])

    def default_grants(self) -> list[Grant]:
        return [
            Grant(token=HUBSPOT_ACCESS_TOKEN),
            Grant(token=HUBSPOT_OAUTH_TOKEN, refresh_token=HUBSPOT_REFRESH_TOKEN),
        ]

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
        request_id = self._correlation_id()
        body = {"status": "error", "message": message, "correlationId": request_id, "category": category}
        return Response(status, body, {self.request_id_header: request_id})

    def rate_limited(self, verdict: Verdict) -> Response:
        request_id = self._correlation_id()
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "category": "RATE_LIMITS",  # the Error schema's required category, beside the rate-limit fields
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

    def _correlation_id(self) -> str:
        """The request id of this thread's request (error bodies carry it), or a new one outside requests."""
        current = getattr(self._local, "request_id", None)
        return current or str(uuid.uuid4())

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

    # -- finding and saving ----------------------------------------------------------------------------------
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
                    value = as_string((record.get("properties") or {}).get(id_property)).casefold()
                    if value and (value not in values or not record.get("archived")):
                        values[value] = record["id"]
                index = self._unique[object_type] = (collection.version, values)
            found = index[1].get(wanted)
            return collection.get(found) if found else None
        matches = [
            r for r in collection if as_string((r.get("properties") or {}).get(id_property)).casefold() == wanted
        ]
        live = [r for r in matches if not r.get("archived")]
        return (live or matches or [None])[0]

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
            old_value = as_string(((old or {}).get("properties") or {}).get(name)).casefold()
            if old_value and values.get(old_value) == record["id"]:
                del values[old_value]
            new_value = as_string((record.get("properties") or {}).get(name)).casefold()
            if new_value and (not record.get("archived") or values.get(new_value) in (None, record["id"])):
                values[new_value] = record["id"]
        self.store(object_type, record)
        if name and in_step:
            self._unique[object_type] = (collection.version, index[1])

    # -- rendering -------------------------------------------------------------------------------------------
    def _view(self, object_type: str, properties: Any, associations: Any) -> tuple[Any, Callable[[Record], dict]]:
        """The cache key and shape function for a property selection and association list."""
        if isinstance(properties, str):
            properties = [properties]
        names = name_list(properties or []) or list(DEFAULT_PROPERTIES[object_type])
        names = tuple(dict.fromkeys([*names, *ALWAYS[object_type]]))
        if isinstance(associations, str):
            associations = [associations]
        to_types = tuple(dict.fromkeys(PLURAL[a.lower()] for a in name_list(associations or []) if a.lower() in PLURAL))
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
                    {"id": to_id, "type": type_label(object_type, to_type, t)}
                    for to_id, type_ids in self._graph.links(object_type, record["id"], to_type)
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


def unquoting(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """The SDK percent-encodes path parameters (an email as `a%40b.example`); the router hands them on raw."""

    def unquoted(request: Request) -> Response:
        request.params = {name: unquote(value) for name, value in request.params.items()}
        return handler(request)

    return unquoted
