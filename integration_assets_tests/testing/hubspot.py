"""Talking to the HubSpot sandbox from tests: the SDK client, plain HTTP, and reading its errors."""

from __future__ import annotations

import json
import re

import requests
from hubspot import HubSpot

from integration_sandbox.server import Sandbox

__all__ = ["UUID", "api", "client", "header", "json_body", "live"]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def client(sandbox: Sandbox, token: str = "pat-sandbox") -> HubSpot:
    return HubSpot(access_token=token, host=sandbox.url("hubspot"))


def api(sandbox: Sandbox, method: str, path: str, token: str = "pat-sandbox", **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, sandbox.url("hubspot") + path, headers=headers, timeout=30, **kwargs)


def live(records: list[dict]) -> list[dict]:
    return [r for r in records if not r.get("archived")]


def json_body(error: Exception) -> dict:
    return json.loads(error.body)


def header(error: Exception, name: str) -> str | None:
    return {k.lower(): v for k, v in error.headers.items()}.get(name.lower())
