"""HubSpot's shape, for ApiClient: its errors, rate headers and request ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integration_assets.core.errors import Category, ErrorRule, Severity
from integration_assets.core.http import RateInfo
from integration_assets.systems.crm.routes import ROUTES


class HubSpot:
    system = "crm"
    name = "hubspot"
    request_id_header = "X-HubSpot-Correlation-Id"
    base_url_variable = "HUBSPOT_BASE_URL"
    routes = ROUTES  # what each request does is looked up here, never taken from the caller
    error_rules = (
        ErrorRule(
            Category.AUTH_EXPIRED,
            "refresh or rotate HUBSPOT_ACCESS_TOKEN",
            status=401,
            code="EXPIRED_AUTHENTICATION",
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.AUTH_INVALID,
            "check HUBSPOT_ACCESS_TOKEN: HubSpot does not accept it",
            status=401,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.PERMISSION_DENIED,
            "grant scope {scopes} to the app behind HUBSPOT_ACCESS_TOKEN",
            status=403,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.RATE_LIMITED,
            "none: paced and retried; if it persists, lower the request budget",
            status=429,
            severity=Severity.WARNING,
        ),
        ErrorRule(Category.CONFLICT, "the record exists already: update it instead of creating it", status=409),
        ErrorRule(Category.REJECTED_VALUE, "fix the request: {message}", status=400),
    )

    def parse_error(self, status: int, body: Any) -> tuple[str | None, str, dict[str, Any]]:
        if not isinstance(body, dict):
            return None, "", {}
        code = body.get("category") or body.get("errorType")
        scopes = [
            scope
            for error in body.get("errors") or []
            for scope in (error.get("context") or {}).get("requiredScopes", [])
        ]
        message = body.get("message", "")
        return code, message, {"scopes": ", ".join(scopes) or "(see message)", "message": message}

    def rate_info(self, headers: Mapping[str, str]) -> RateInfo | None:
        limit = headers.get("X-HubSpot-RateLimit-Max")
        if limit is None:
            return None
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        remaining = headers.get("X-HubSpot-RateLimit-Remaining")
        return RateInfo(
            limit=int(limit),
            window_s=int(interval) / 1000 if interval else None,
            remaining=int(remaining) if remaining is not None else None,
        )

    def should_retry(self, response: requests.Response) -> bool | None:
        return None
