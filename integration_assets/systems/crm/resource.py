"""The HubSpot connection as a Dagster resource: a private-app token, or OAuth that refreshes itself."""

from __future__ import annotations

from pydantic import Field

from integration_assets.core.credentials import BearerToken, OAuthRefreshToken
from integration_assets.core.http import Credential
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.resources import VendorConnection
from integration_assets.systems.crm.client import HubSpot


class HubSpotResource(VendorConnection):
    access_token: str | None = Field(None, description="HUBSPOT_ACCESS_TOKEN (private app token)")
    oauth_refresh_token: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    requests_per_10s: int | None = Field(
        None, description="request budget; learnt from X-HubSpot-RateLimit-Max when not set"
    )

    def vendor(self) -> HubSpot:
        return HubSpot()

    def credential(self) -> Credential:
        if self.oauth_refresh_token:
            return OAuthRefreshToken(
                token_url=f"{self.base_url.rstrip('/')}/oauth/v1/token",
                client_id=self.oauth_client_id or "",
                client_secret=self.oauth_client_secret or "",
                refresh_token=self.oauth_refresh_token,
            )
        if not self.access_token:
            raise ValueError("HubSpotResource needs access_token (HUBSPOT_ACCESS_TOKEN) or an OAuth refresh token")
        return BearerToken(self.access_token)

    def budget(self) -> RequestBudget:
        return RequestBudget(self.requests_per_10s, 10.0)
