"""The HubSpot connection as a Dagster resource: a private-app token, or OAuth that refreshes itself.

A connector may have its own private-app token (`HUBSPOT_SOURCE_ACCESS_TOKEN` for `crm_source`,
`HUBSPOT_BILLING_TO_CRM_ACCESS_TOKEN` for `billing_to_crm`), which wins over the shared token or OAuth."""

from __future__ import annotations

from dagster import InitResourceContext
from pydantic import Field

from integration_assets.core.credentials import (
    BearerToken,
    ConnectorCredentials,
    OAuthRefreshToken,
    connector_settings,
)
from integration_assets.core.http import Credential, check_base_url
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

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """A base URL that would send the token in clear is refused when the run starts, not at its first call."""
        check_base_url(self.base_url, HubSpot.base_url_variable)

    def credential(self) -> ConnectorCredentials:  # type: ignore[override]
        return ConnectorCredentials(self._credential_of)

    def _credential_of(self, connector: str) -> Credential:
        """The connector's own token (`HUBSPOT_<CONNECTOR>_ACCESS_TOKEN`) if set, else OAuth or the shared token."""
        settings, own = connector_settings("HUBSPOT", "crm", connector, {"ACCESS_TOKEN": self.access_token})
        if own:
            return BearerToken(settings["ACCESS_TOKEN"] or "")
        if self.oauth_refresh_token:
            return OAuthRefreshToken(
                token_url=f"{check_base_url(self.base_url, HubSpot.base_url_variable)}/oauth/v1/token",
                client_id=self.oauth_client_id or "",
                client_secret=self.oauth_client_secret or "",
                refresh_token=self.oauth_refresh_token,
            )
        if not self.access_token:
            raise ValueError("HubSpotResource needs access_token (HUBSPOT_ACCESS_TOKEN) or an OAuth refresh token")
        return BearerToken(self.access_token)

    def pacing(self) -> tuple[int | None, float]:
        return self.requests_per_10s, 10.0

    def budget_identity(self, connector: str) -> tuple[str, ...]:
        """HubSpot limits each private app (its token) or each OAuth app's install (its refresh token)."""
        credential = self._credential_of(connector)
        if isinstance(credential, OAuthRefreshToken):
            return ("oauth", credential.client_id, credential.refresh_token)
        return ("token", *credential.secrets())
