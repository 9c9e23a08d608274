"""Where a person opens a Zendesk record: the evidence of a failed check links each record it names.

An account's agent pages live on its own subdomain, the one its API base URL names
(`https://acme.zendesk.com` → `https://acme.zendesk.com/agent/tickets/42`). Any other host (the local
sandbox) has no agent pages, so no link.
"""

import os
from urllib.parse import quote, urlsplit

__all__ = ["BASE_URL_ENV", "record_page", "record_url"]

BASE_URL_ENV = "ZENDESK_BASE_URL"
DOMAIN = "zendesk.com"
PAGES = {"tickets": "tickets", "users": "users", "organizations": "organizations"}


def record_url(object_type: str, record_id: object, base_url: str | None) -> str | None:
    """`https://<subdomain>.zendesk.com/agent/<object_type>/<id>`, or None off a Zendesk subdomain."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    subdomain = host.removesuffix("." + DOMAIN)
    page = PAGES.get(object_type)
    if subdomain == host or not subdomain or "." in subdomain or not page:
        return None
    if record_id is None or str(record_id).strip() == "":
        return None
    return f"https://{subdomain}.{DOMAIN}/agent/{page}/{quote(str(record_id), safe='')}"


def record_page(object_type: str, record_id: object) -> str | None:
    """The record's page at the base URL the connection is configured with (the catalog's `record_page`)."""
    return record_url(object_type, record_id, os.environ.get(BASE_URL_ENV, ""))
