"""The Zendesk connection as a Dagster resource: an agent's email with an API token, optionally one pair per
connector (`ZENDESK_SOURCE_EMAIL` with `ZENDESK_SOURCE_API_TOKEN`, both or neither), else the shared
`ZENDESK_EMAIL`/`ZENDESK_API_TOKEN`."""

from __future__ import annotations

from dagster import InitResourceContext
from pydantic import Field

from integration_assets.core.credentials import (
    BasicAuth,
    ConnectorCredentials,
    connector_settings,
    connector_variable,
)
from integration_assets.core.http import Credential, check_base_url
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
        """The connector's own email and token (`ZENDESK_<CONNECTOR>_EMAIL`, `_API_TOKEN`) when both are set, the
        shared pair when neither is; one without the other is refused (the token belongs to one user: never send
        it with the shared email). The refusal names the variables, never their values."""
        own, _ = connector_settings("ZENDESK", "support", connector, {"EMAIL": None, "API_TOKEN": None})
        if bool(own["EMAIL"]) != bool(own["API_TOKEN"]):
            email, token = (connector_variable("ZENDESK", "support", connector, s) for s in ("EMAIL", "API_TOKEN"))
            raise ValueError(
                f"{connector}: set both {email} and {token} (the connector's own Zendesk login) or neither "
                "(the shared ZENDESK_EMAIL and ZENDESK_API_TOKEN); only one of them is set"
            )
        if own["EMAIL"]:
            return BasicAuth(f"{own['EMAIL']}/token", own["API_TOKEN"] or "")
        return BasicAuth(f"{self.email}/token", self.api_token or "")

    def pacing(self) -> tuple[int | None, float]:
        return self.requests_per_minute, 60.0

    # Zendesk limits the account, whichever user calls: the base URL (its subdomain) is the budget's identity.
