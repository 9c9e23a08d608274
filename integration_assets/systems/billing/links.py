"""Where a person opens a Stripe record: the evidence of a failed check links each record it names.

Stripe's dashboard pages are named by object and id; a charge is shown among the payments. Only when the
base URL is Stripe's own API: the local sandbox has no dashboard. Records made with a test-mode key
(`sk_test_…`, `rk_test_…`) are shown under the dashboard's `/test/` pages; only the key's mode prefix is read.
"""

import os
from urllib.parse import quote, urlsplit

__all__ = ["BASE_URL_ENV", "record_page", "record_url"]

BASE_URL_ENV = "STRIPE_BASE_URL"
API_KEY_ENV = "STRIPE_API_KEY"
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
API_HOST = "api.stripe.com"
DASHBOARD_URL = "https://dashboard.stripe.com"
PAGES = {"customers": "customers", "invoices": "invoices", "charges": "payments"}


def record_url(object_type: str, record_id: object, base_url: str | None, test_mode: bool = False) -> str | None:
    """`https://dashboard.stripe.com/invoices/in_123` (`…/test/invoices/…` in test mode), or None off Stripe's
    API or for an unknown object."""
    host = (urlsplit(base_url or "").hostname or "").lower()
    page = PAGES.get(object_type)
    if host != API_HOST or not page or record_id is None or str(record_id).strip() == "":
        return None
    mode = "/test" if test_mode else ""
    return f"{DASHBOARD_URL}{mode}/{page}/{quote(str(record_id), safe='')}"


def record_page(object_type: str, record_id: object) -> str | None:
    """The record's page at the base URL the connection is configured with (the catalog's `record_page`)."""
    test_mode = os.environ.get(API_KEY_ENV, "").startswith(TEST_KEY_PREFIXES)
    return record_url(object_type, record_id, os.environ.get(BASE_URL_ENV, ""), test_mode)
