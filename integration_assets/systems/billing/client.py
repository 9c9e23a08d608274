"""Stripe's shape, for ApiClient: its errors, its word on retries and request ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests

from integration_assets.core.errors import Category, ErrorRule, Severity
from integration_assets.core.http import RateInfo
from integration_assets.systems.billing.routes import ROUTES

_PERMISSION = re.compile(r"'(rak_[a-z_]+)'")


class Stripe:
    system = "billing"
    name = "stripe"
    request_id_header = "Request-Id"
    base_url_variable = "STRIPE_BASE_URL"
    routes = ROUTES  # what each request does is looked up here, never taken from the caller
    error_rules = (
        ErrorRule(
            Category.AUTH_EXPIRED,
            "roll the key and update STRIPE_API_KEY",
            status=401,
            code="api_key_expired",
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.AUTH_INVALID,
            "check STRIPE_API_KEY: Stripe does not accept it",
            status=401,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.PERMISSION_DENIED,
            "give the restricted key behind STRIPE_API_KEY the '{permission}' permission",
            status=403,
            severity=Severity.CRITICAL,
        ),
        ErrorRule(
            Category.RATE_LIMITED,
            "none: paced and retried",
            status=(429, 400),
            code="rate_limit",
            severity=Severity.WARNING,
        ),
        ErrorRule(
            Category.TRANSIENT,
            "none: another request with this idempotency key is running; retried",
            status=409,
            code="idempotency_key_in_use",
            severity=Severity.WARNING,
        ),
        ErrorRule(
            Category.CONFLICT,
            "an idempotency key was reused with other parameters: derive keys from the record and its version",
            status=400,
            code="idempotency_error",
        ),
        ErrorRule(
            Category.NOT_FOUND,
            "check that {param} exists in Stripe",
            status=(400, 404),
            code="resource_missing",
        ),
        ErrorRule(Category.REJECTED_VALUE, "fix {param}: {message}", status=400),
    )

    def parse_error(self, status: int, body: Any) -> tuple[str | None, str, dict[str, Any]]:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None, "", {}
        message = error.get("message", "")
        permission = _PERMISSION.search(message)
        code = error.get("code") or (error.get("type") if error.get("type") == "idempotency_error" else None)
        return (
            code,
            message,
            {
                "param": error.get("param") or "the request",
                "message": message,
                "permission": permission.group(1) if permission else "required",
            },
        )

    def rate_info(self, headers: Mapping[str, str]) -> RateInfo | None:
        return None

    def should_retry(self, response: requests.Response) -> bool | None:
        word = response.headers.get("Stripe-Should-Retry")
        return None if word is None else word.lower() == "true"
