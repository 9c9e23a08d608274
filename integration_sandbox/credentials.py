"""The credentials every sandbox vendor accepts out of the box, each allowed everything.

One place for them: the vendors grant them, the plain-HTTP clients send them, and the integration's
quickstart hands them to Dagster under these environment-variable names.
"""

from __future__ import annotations

HUBSPOT_ACCESS_TOKEN = "pat-sandbox"
HUBSPOT_OAUTH_TOKEN = "oauth-sandbox"  # carries the OAuth refresh token below
HUBSPOT_REFRESH_TOKEN = "refresh-sandbox"
HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET = "sandbox-client", "sandbox-secret"  # the OAuth app refreshing it
STRIPE_API_KEY = "sk_test_sandbox"
ZENDESK_EMAIL = "admin@sandbox.test"
ZENDESK_API_TOKEN = "zendesk-sandbox"

DEFAULT_CREDENTIALS = {
    "HUBSPOT_ACCESS_TOKEN": HUBSPOT_ACCESS_TOKEN,
    "STRIPE_API_KEY": STRIPE_API_KEY,
    "ZENDESK_EMAIL": ZENDESK_EMAIL,
    "ZENDESK_API_TOKEN": ZENDESK_API_TOKEN,
}
