"""Talking to the Stripe sandbox from tests: the SDK client with its key, and plain HTTP."""

from __future__ import annotations

import requests
import stripe

from integration_sandbox.server import Sandbox

__all__ = ["KEY", "api", "client"]

KEY = "sk_test_sandbox"


def client(sandbox: Sandbox, key: str = KEY, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": sandbox.url("stripe")}, max_network_retries=retries)


def api(
    sandbox: Sandbox, method: str, path: str, key: str = KEY, headers: dict | None = None, **kwargs
) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", **(headers or {})}
    return requests.request(method, sandbox.url("stripe") + path, headers=headers, timeout=30, **kwargs)
