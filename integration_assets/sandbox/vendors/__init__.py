"""The imitated vendors, by name."""

from integration_assets.sandbox.vendors.hubspot import HubSpotApp
from integration_assets.sandbox.vendors.stripe import StripeApp
from integration_assets.sandbox.vendors.zendesk import ZendeskApp

VENDOR_APPS = {"hubspot": HubSpotApp, "stripe": StripeApp, "zendesk": ZendeskApp}
