"""Stripe's error bodies, `{"error": {...}}`, and the `Stripe-Should-Retry` header its SDKs obey."""

from __future__ import annotations

from typing import Any

from integration_sandbox.kit import VendorError

ERROR_DOCS = "https://stripe.com/docs/error-codes/"
SINGULAR = {
    "customers": "customer",
    "invoices": "invoice",
    "charges": "charge",
    "events": "event",
    "invoiceitems": "invoiceitem",
}


class Invalid(VendorError):
    """A request whose parameters failed validation: no endpoint ran, so no idempotent result is saved."""


def stripe_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    invalid: bool = False,
    headers: dict[str, str] | None = None,
) -> VendorError:
    """Stripe's `{"error": {...}}` body; `Stripe-Should-Retry` tells the SDK whether a retry can help."""
    body: dict[str, Any] = {}
    if code:
        body["code"] = code
        body["doc_url"] = ERROR_DOCS + code.replace("_", "-")
    body["message"] = message
    if param:
        body["param"] = param
    body["type"] = kind
    retry = {409: "true", 429: "true"}.get(status, "false" if 400 <= status < 500 else None)
    extra = {"Stripe-Should-Retry": retry} if retry else {}
    return (Invalid if invalid else VendorError)(status, {"error": body}, {**extra, **(headers or {})})


def bad(message: str, param: str | None = None) -> VendorError:
    return stripe_error(400, message, param=param, invalid=True)


def missing(object_type: str, object_id: str, param: str, status: int = 400) -> VendorError:
    return stripe_error(status, f"No such {SINGULAR[object_type]}: '{object_id}'", code="resource_missing", param=param)
