"""The Zendesk connection as a Dagster resource: an agent's email with an API token."""

from __future__ import annotations

from pydantic import Field

from integration_assets.core.credentials import BasicAuth
from integration_assets.core.http import Credential
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.resources import VendorConnection
from integration_assets.systems.support.client import Zendesk


class ZendeskResource(VendorConnection):
    email: str = Field(description="ZENDESK_EMAIL: the user the API token belongs to")
    api_token: str = Field(description="ZENDESK_API_TOKEN")
    requests_per_minute: int | None = Field(None, description="learnt from X-Rate-Limit when not set")

    def vendor(self) -> Zendesk:
        return Zendesk()

    def credential(self) -> Credential:
        return BasicAuth(f"{self.email}/token", self.api_token)

    def budget(self) -> RequestBudget:
        return RequestBudget(self.requests_per_minute, 60.0)
