"""Stripe's API keys: secret or restricted, sent as Bearer or Basic, and the 401/403s that refuse them."""

from __future__ import annotations

import base64
import binascii
import re
import time

from integration_sandbox.auth import CredentialBook, Grant
from integration_sandbox.kit import Request, Route
from integration_sandbox.vendors.stripe.errors import stripe_error

ACCOUNT = "acct_1SandboxStripe00"
PERMISSION = {"customers": "customer", "invoices": "invoice", "charges": "charge", "events": "event"}


def grant_for(credentials: CredentialBook, request: Request, route: Route) -> Grant:
    """The grant of the request's key, or Stripe's 401 (no, unknown or expired key) or 403 (not permitted)."""
    key = api_key(request)
    grant = credentials.lookup(key)
    if grant is None:
        raise stripe_error(401, f"Invalid API Key provided: {mask_key(key)}")
    if grant.expired(time.time()):
        raise stripe_error(401, f"Expired API Key provided: {mask_key(key)}", code="api_key_expired")
    if not permits(grant, route.scope):
        resource, _, level = (route.scope or "").partition(":")
        raise stripe_error(
            403,
            f"The provided key '{mask_key(key)}' does not have the required permissions for this "
            f"endpoint on account '{ACCOUNT}'. Having the 'rak_{PERMISSION[resource]}_{level}' "
            "permission would allow this request to continue.",
        )
    return grant


def mask_key(key: str) -> str:
    """`sk_test_****abcd`: the way Stripe echoes a key it refuses."""
    found = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    prefix, rest = (found.group(1), found.group(2)) if found else ("", key)
    return prefix + "*" * max(len(rest) - 4, 4) + rest[-4:] if len(rest) > 4 else prefix + "****"


def api_key(request: Request) -> str:
    header = (request.header("Authorization") or "").strip()
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        if user:
            return user
    raise stripe_error(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization header, "
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
    )


def permits(grant: Grant, scope: str | None) -> bool:
    """Restricted keys: `customers:read` style or `rak_customer_read` style; write implies read."""
    if scope is None or grant.scopes is None:
        return True
    resource, _, level = scope.partition(":")
    accepted = {scope, f"rak_{PERMISSION[resource]}_{level}"}
    if level == "read":
        accepted |= {f"{resource}:write", f"rak_{PERMISSION[resource]}_write"}
    return bool(accepted & grant.scopes)
