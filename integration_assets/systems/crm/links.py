"""Where a person opens a HubSpot record: the evidence of a failed check links each record it names.

HubSpot's record pages live on the app, not the API host, under the account's portal (hub) id, which the API
base URL does not carry: it is read from `HUBSPOT_PORTAL_ID`. Without it, or when the base URL is not
HubSpot's own API (the local sandbox), there is no page to open and no link.
"""

import os
from urllib.parse import quote, urlsplit

__all__ = ["BASE_URL_ENV", "PORTAL_ENV", "record_page", "record_url"]

BASE_URL_ENV = "HUBSPOT_BASE_URL"
PORTAL_ENV = "HUBSPOT_PORTAL_ID"
API_HOST = "hubapi.com"  # api.hubapi.com, and any regional api host
APP_URL = "https://app.hubspot.com"
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}  # HubSpot's standard object type ids


def record_url(object_type: str, record_id: object, base_url: str | None, portal: str | None = None) -> str | None:
    """`https://app.hubspot.com/contacts/<portal>/record/0-1/<id>`, or None off HubSpot's API or without a
    portal id (`portal`, else `HUBSPOT_PORTAL_ID`)."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    portal = (portal if portal is not None else os.environ.get(PORTAL_ENV, "")).strip()
    type_id = OBJECT_TYPE_IDS.get(object_type)
    if not (host == API_HOST or host.endswith("." + API_HOST)) or not portal.isdigit() or not type_id:
        return None
    if record_id is None or str(record_id).strip() == "":
        return None
    return f"{APP_URL}/contacts/{portal}/record/{type_id}/{quote(str(record_id), safe='')}"


def record_page(object_type: str, record_id: object) -> str | None:
    """The record's page at the base URL the connection is configured with (the catalog's `record_page`)."""
    return record_url(object_type, record_id, os.environ.get(BASE_URL_ENV, ""))
