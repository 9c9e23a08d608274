"""The Zendesk connection as a Dagster resource: an agent's email with an API token, optionally one pair per
connector (`ZENDESK_SOURCE_EMAIL`/`ZENDESK_SOURCE_API_TOKEN`, falling back to `ZENDESK_EMAIL`/`ZENDESK_API_TOKEN`)."""

from __future__ import annotations

from dagster import InitResourceContext
from pydantic import Field

from integration_assets.core.credentials import BasicAuth, ConnectorCredentials, connector_settings
from integration_assets.core.http import Credential, check_base_url
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.resources import VendorConnection
from integration_assets.systems.support.client import Zendesk


class ZendeskResource(VendorConnection):
    email: str = Field(description="ZENDESK_EMAIL: the user the API token belongs to")
    api_token: str = Field(description="ZENDESK_API_TOKEN")
    requests_per_minute: int | None = Field(None, description="learnt from X-Rate-Limit when not set")

    def vendor(self) -> Zendesk:
        return Zendesk()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """A base URL that would send the token in clear is refused when the run starts, not at its first call."""
        check_base_url(self.base_url, Zendesk.base_url_variable)

    def credential(self) -> ConnectorCredentials:  # type: ignore[override]
        return ConnectorCredentials(self._credential_of)

    def _credential_of(self, connector: str) -> Credential:
        """The connector's own email and token (`ZENDESK_<CONNECTOR>_EMAIL`, `_API_TOKEN`) where set, else shared."""
        settings, _ = connector_settings(
            "ZENDESK", "support", connector, {"EMAIL": self.email, "API_TOKEN": self.api_token}
        )
        return BasicAuth(f"{settings['EMAIL']}/token", settings["API_TOKEN"] or "")

    def budget(self) -> RequestBudget:
        return RequestBudget(self.requests_per_minute, 60.0)
