"""What every Zendesk endpoint shares: `.json` paths, auth, error bodies, rate-limit headers, lookups."""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from integration_sandbox.auth import Grant
from integration_sandbox.credentials import ZENDESK_API_TOKEN, ZENDESK_EMAIL
from integration_sandbox.kit import Host, Request, Response, Route, VendorApp, VendorError, dumps
from integration_sandbox.ratelimit import RollingWindow, Verdict
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import NOMINAL_RATE_LIMIT, iso, listed, reachable
from integration_sandbox.vendors.zendesk.errors import (
    FORBIDDEN,
    INVALID_TOKEN,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHENTICATED,
)
from integration_sandbox.vendors.zendesk.timeline import ExportCollection


class ZendeskCore(VendorApp):
    """The Zendesk app without its endpoints: each endpoint module adds its own to this."""

    def __init__(self, dataset_dir: Path | None, sandbox: Host) -> None:
        super().__init__(dataset_dir, sandbox)
        self._usage = RollingWindow(NOMINAL_RATE_LIMIT, 60.0)

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
        return [Grant(token=ZENDESK_API_TOKEN, email=ZENDESK_EMAIL, role="admin")]

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
            RATE_LIMITED,
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

    def _nominal_rate_headers(self, request: Request) -> dict[str, str]:
        """The plan's limit, reported when the fault profile sets none (a configured limit's headers win)."""
        verdict = self._usage.hit(request.grant.token if request.grant else "")
        return {"X-Rate-Limit": str(NOMINAL_RATE_LIMIT), "X-Rate-Limit-Remaining": str(verdict.remaining)}

    # -- records ------------------------------------------------------------------------------------
    @staticmethod
    def _touched(record: Record, now: float) -> Record:
        record["updated_at"] = iso(now)
        record["generated_timestamp"] = int(now)
        return record

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
        record = self._reachable(object_type, record_id)
        if record is None:
            raise VendorError(404, NOT_FOUND)
        return record

    def _reachable(self, object_type: str, record_id: Any) -> Record | None:
        """The record a show, update, delete or link by id finds (a deleted organization is none)."""
        record = self._collection(object_type).get(record_id)
        return record if record is not None and reachable(object_type)(record) else None
