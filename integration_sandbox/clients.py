"""Plain-HTTP clients of the three sandbox vendors, page by page the way each vendor paginates.

Tests use these where the official SDKs would hide what is on the wire (faults, headers, raw pages), and
benchmarks to learn a vendor's page URLs. They send the sandbox's default credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from integration_sandbox import credentials

LIST_PATHS = {
    "hubspot": "/crm/v3/objects/contacts",
    "stripe": "/v1/customers",
    "zendesk": "/api/v2/users.json",
}


def session(vendor: str) -> requests.Session:
    http = requests.Session()
    if vendor == "hubspot":
        http.headers["Authorization"] = f"Bearer {credentials.HUBSPOT_ACCESS_TOKEN}"
    elif vendor == "stripe":
        http.headers["Authorization"] = f"Bearer {credentials.STRIPE_API_KEY}"
    else:
        http.auth = (f"{credentials.ZENDESK_EMAIL}/token", credentials.ZENDESK_API_TOKEN)
    return http


def list_all(base_url: str, vendor: str, object_type: str, **extra: str) -> Iterator[dict]:
    """Every record the vendor lists for `object_type`, following its own pagination to the end."""
    http = session(vendor)
    if vendor == "hubspot":
        params = {"limit": "100", **extra}
        while True:
            page = http.get(f"{base_url}/crm/v3/objects/{object_type}", params=params, timeout=30)
            page.raise_for_status()
            body = page.json()
            yield from body["results"]
            if "paging" not in body:
                return
            params["after"] = body["paging"]["next"]["after"]
    elif vendor == "stripe":
        params = {"limit": "100", **extra}
        while True:
            page = http.get(f"{base_url}/v1/{object_type}", params=params, timeout=30)
            page.raise_for_status()
            body = page.json()
            yield from body["data"]
            if not body["has_more"]:
                return
            params["starting_after"] = body["data"][-1]["id"]
    else:
        url: str | None = f"{base_url}/api/v2/{object_type}.json?page[size]=100"
        while url:
            page = http.get(url, timeout=30)
            page.raise_for_status()
            body = page.json()
            yield from body[object_type]
            url = body["links"]["next"] if body["meta"]["has_more"] else None
