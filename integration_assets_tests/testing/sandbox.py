"""Talking to a running sandbox as an operator does: its inspection routes and its fault profile, over HTTP."""

from __future__ import annotations

import requests

from integration_sandbox.server import Sandbox

__all__ = ["FREE_PORTS", "put_faults", "sandbox_records"]

FREE_PORTS = {"hubspot": 0, "stripe": 0, "zendesk": 0}


def put_faults(sandbox: Sandbox, profile_yaml: str) -> dict:
    """Swaps the fault profile over HTTP, as an operator would."""
    response = requests.put(f"{sandbox.url('hubspot')}/__sandbox__/faults", data=profile_yaml, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def sandbox_records(sandbox: Sandbox, vendor: str, object_type: str) -> list[dict]:
    response = requests.get(f"{sandbox.url(vendor)}/__sandbox__/records/{object_type}", timeout=30)
    response.raise_for_status()
    return response.json()
