"""Zendesk's shape, for ApiClient: its errors, rate headers and request ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integration_assets.core.errors import Category, ErrorRule, Severity
from integration_assets.core.http import RateInfo
from integration_assets.systems.support.routes import ROUTES


class Zendesk:
    system = "support"
    name = "zendesk"
    request_id_header = "X-Zendesk-Request-Id"
    base_url_variable = "ZENDESK_BASE_URL"
    routes = ROUTES  # what each request does is looked up here, never taken from the caller
    error_rules = (
        ErrorRule(
            Category.AUTH_EXPIRED,
            "renew the OAuth token in ZENDESK_API_TOKEN",
            status=401,
            code="invalid_token",
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.AUTH_INVALID,
            "check ZENDESK_EMAIL and ZENDESK_API_TOKEN: Zendesk does not accept them",
            status=401,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.PERMISSION_DENIED,
            "give the Zendesk user in ZENDESK_EMAIL the admin role (incremental exports are admin-only)",
            status=403,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.RATE_LIMITED,
            "none: waits as Retry-After says, then retries",
            status=429,
            severity=Severity.WARNING,
        ),
        ErrorRule(
            Category.CONFLICT,
            "re-read the record and decide again (safe_update refused a stale write)",
            status=409,
        ),
        ErrorRule(Category.REJECTED_VALUE, "fix the fields Zendesk names: {message}", status=(400, 422)),
    )

    def parse_error(self, status: int, body: Any) -> tuple[str | None, str, dict[str, Any]]:
        if not isinstance(body, dict):
            return None, "", {}
        code = body.get("error") if isinstance(body.get("error"), str) else None
        message = body.get("description") or body.get("error_description") or code or ""
        listed = body.get("errors")  # the documented `Errors` shape (e.g. a 429): [{code, title, detail}]
        if code is None and isinstance(listed, list) and listed and isinstance(listed[0], dict):
            code = listed[0].get("code") if isinstance(listed[0].get("code"), str) else None
            message = str(listed[0].get("detail") or listed[0].get("title") or code or "")
        details = body.get("details")
        if isinstance(details, dict):
            fields = "; ".join(
                f"{name}: {problem.get('description', problem)}"
                for name, problems in details.items()
                for problem in (problems if isinstance(problems, list) else [problems])
                if isinstance(problem, dict)
            )
            message = f"{message} ({fields})" if fields else message
        return code, message, {"message": message}

    def rate_info(self, headers: Mapping[str, str]) -> RateInfo | None:
        limit = headers.get("X-Rate-Limit")
        if limit is None:
            return None
        remaining = headers.get("X-Rate-Limit-Remaining")
        return RateInfo(int(limit), 60.0, int(remaining) if remaining is not None else None)

    def should_retry(self, response: requests.Response) -> bool | None:
        return None
