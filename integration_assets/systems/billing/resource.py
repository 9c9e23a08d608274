"""The Stripe connection as a Dagster resource: a secret or restricted key, optionally one per connector
(`STRIPE_SOURCE_API_KEY`, `STRIPE_CRM_TO_BILLING_API_KEY`, falling back to `STRIPE_API_KEY`)."""

from __future__ import annotations

from dagster import InitResourceContext
from pydantic import Field

from integration_assets.core.credentials import BearerToken, ConnectorCredentials, connector_settings
from integration_assets.core.http import Credential, check_base_url
from integration_assets.core.resources import VendorConnection
from integration_assets.systems.billing.client import Stripe

LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


class StripeResource(VendorConnection):
    api_key: str = Field(description="STRIPE_API_KEY (a restricted key with only what the connector needs)")
    requests_per_second: int | None = Field(
        25, description="pace with a test-mode key (sk_test_, rk_test_): Stripe allows 25 requests/s; None: unpaced"
    )
    live_requests_per_second: int | None = Field(
        100, description="pace with a live-mode key (sk_live_, rk_live_): Stripe allows 100 requests/s; None: unpaced"
    )

    def vendor(self) -> Stripe:
        return Stripe()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """A base URL that would send the key in clear is refused when the run starts, not at its first call."""
        check_base_url(self.base_url, Stripe.base_url_variable)

    def credential(self) -> ConnectorCredentials:  # type: ignore[override]
        return ConnectorCredentials(self._credential_of)

    def _credential_of(self, connector: str) -> Credential:
        """The connector's own key (`STRIPE_<CONNECTOR>_API_KEY`) when it has one, else `STRIPE_API_KEY`."""
        settings, _ = connector_settings("STRIPE", "billing", connector, {"API_KEY": self.api_key})
        return BearerToken(settings["API_KEY"] or "")

    def pacing(self) -> tuple[int | None, float]:
        """Stripe's limit follows the key's mode: a live key may send four times a test key's requests. A key
        of neither kind is paced as a test key."""
        live = self.api_key.startswith(LIVE_KEY_PREFIXES)
        return self.live_requests_per_second if live else self.requests_per_second, 1.0

    def budget_identity(self, connector: str) -> tuple[str, ...]:
        """Stripe limits each account in each mode: its keys are what this side can tell them by."""
        return tuple(self._credential_of(connector).secrets())
