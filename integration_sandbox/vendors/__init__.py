"""The imitated vendors, by name.

Each is a package: `core` (the app's state, auth, errors and lookups), one module per resource or endpoint
family, each a mixin of `core` adding its endpoints, and `app`, which composes them and lists the routes.
"""

from integration_sandbox.vendors.hubspot import HubSpotApp
from integration_sandbox.vendors.stripe import StripeApp
from integration_sandbox.vendors.zendesk import ZendeskApp

VENDOR_APPS = {"hubspot": HubSpotApp, "stripe": StripeApp, "zendesk": ZendeskApp}
