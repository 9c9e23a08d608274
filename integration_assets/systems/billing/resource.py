"""The Stripe connection as a Dagster resource: a secret or restricted key."""

from __future__ import annotations

from pydantic import Field

from integration_assets.core.credentials import BearerToken
from integration_assets.core.http import Credential
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.resources import VendorConnection
from integration_assets.systems.billing.client import Stripe


class StripeResource(VendorConnection):
    api_key: str = Field(description="STRIPE_API_KEY (a restricted key with only what the connector needs)")
    requests_per_second: int | None = Field(25, description="Stripe allows 25/s in test mode, 100/s live")

    def vendor(self) -> Stripe:
        return Stripe()

    def credential(self) -> Credential:
        return BearerToken(self.api_key)

    def budget(self) -> RequestBudget:
        return RequestBudget(self.requests_per_second, 1.0)
