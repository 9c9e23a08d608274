"""Credentials for ApiClient: static bearer tokens, HTTP basic, OAuth that refreshes itself, and one per connector.

A vendor's connectors need not share a key: `{VENDOR}_{CONNECTOR}_{SETTING}` (e.g. `HUBSPOT_SOURCE_ACCESS_TOKEN`
for `crm_source`, `STRIPE_CRM_TO_BILLING_API_KEY` for `crm_to_billing`) is read from the environment when the
connector's client starts and falls back to the vendor's shared setting (`HUBSPOT_ACCESS_TOKEN`), so a deployment
can give the source connectors a read-only key. Dagster's EnvVar has no fallback, hence the environment here.
No value read here is ever put in a message or a log.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from integration_assets.core.errors import Category, IntegrationError, Resource, Severity


class _Credential(Protocol):
    expires_at: float | None

    def headers(self) -> dict[str, str]: ...

    def refresh(self, session: requests.Session) -> bool: ...

    def secrets(self) -> tuple[str, ...]: ...


def connector_variable(vendor: str, role: str, connector: str, setting: str) -> str:
    """The environment variable of a connector's own credential: HubSpot's `ACCESS_TOKEN` of `crm_source` is
    `HUBSPOT_SOURCE_ACCESS_TOKEN` (the role prefix dropped); of `billing_to_crm`,
    `HUBSPOT_BILLING_TO_CRM_ACCESS_TOKEN`."""
    own = connector.removeprefix(f"{role}_") if connector.startswith(f"{role}_") else connector
    return f"{vendor}_{own}_{setting}".upper()


def connector_settings(
    vendor: str, role: str, connector: str, settings: Mapping[str, str | None], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str | None], bool]:
    """`settings` (setting -> the shared value) with each one the connector has its own variable for replaced,
    and whether any was; an empty variable counts as unset."""
    environ = os.environ if environ is None else environ
    chosen, own = dict(settings), False
    for setting in settings:
        value = environ.get(connector_variable(vendor, role, connector, setting))
        if value:
            chosen[setting], own = value, True
    return chosen, own


@dataclass(frozen=True)
class ConnectorCredentials:
    """A vendor's credentials, one per connector: `choose(connector)` gives the one its client sends.

    Not a credential itself: ApiClient resolves it for its connector when it starts."""

    choose: Callable[[str], _Credential]

    def for_connector(self, connector: str) -> Any:
        return self.choose(connector)


@dataclass
class BearerToken:
    token: str
    expires_at: float | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self, session: requests.Session) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass
class BasicAuth:
    username: str
    password: str
    expires_at: float | None = None

    def headers(self) -> dict[str, str]:
        pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    def refresh(self, session: requests.Session) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass
class OAuthRefreshToken:
    """An OAuth access token minted from a refresh token, renewed before it expires."""

    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    expires_at: float | None = 0.0  # unknown yet: refresh before the first call
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def refresh(self, session: requests.Session) -> bool:
        """A redirect is refused, not followed: it would carry the client secret and refresh token elsewhere."""
        with self._lock:
            answer = session.post(
                self.token_url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": self.refresh_token,
                },
                timeout=(5, 30),
                allow_redirects=False,
            )
            if answer.is_redirect or 300 <= answer.status_code < 400:
                raise redirect_refused("the OAuth token endpoint", self.token_url, answer)
            if answer.status_code != 200:
                return False
            grant = answer.json()
            self.access_token = grant["access_token"]
            self.refresh_token = grant.get("refresh_token", self.refresh_token)
            self.expires_at = time.time() + float(grant.get("expires_in", 1800))
            return True

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_token, self.refresh_token, self.client_secret) if s)


def redirect_target(response: requests.Response) -> str:
    """Where a redirect pointed: scheme, host and path only (a query may hold a secret)."""
    location = urlsplit(response.headers.get("Location") or "")
    if not location.netloc:
        return location.path or "(no Location)"
    return f"{location.scheme}://{location.netloc}{location.path}"


def redirect_refused(what: str, url: str, response: requests.Response) -> IntegrationError:
    """The error of a redirect that was not followed, naming where it pointed."""
    origin = urlsplit(url)
    return IntegrationError(
        category=Category.PERMISSION_DENIED,
        message=f"{what} ({origin.scheme}://{origin.netloc}) answered {response.status_code} redirecting to "
        f"{redirect_target(response)}; not followed",
        resource=Resource(system="", endpoint=f"POST {origin.path}"),
        next_action="set the URL the redirect points to if it is genuine; redirects are never followed",
        status=response.status_code,
        severity=Severity.CRITICAL,
    )
