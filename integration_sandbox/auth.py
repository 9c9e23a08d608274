"""Credentials the sandbox accepts: the all-powerful defaults, plus narrower and expiring ones."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace

from integration_sandbox.faults import Credential, VendorSettings


@dataclass(frozen=True)
class Grant:
    token: str
    email: str | None = None
    scopes: frozenset[str] | None = None  # None: allowed everything
    role: str = "admin"
    expires_at: float | None = None
    refresh_token: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, scope: str | None) -> bool:
        return scope is None or self.scopes is None or scope in self.scopes


class CredentialBook:
    """Token → grant, rebuilt whenever the fault profile changes (its TTLs count from then)."""

    def __init__(self, defaults: list[Grant], clock=time.time) -> None:
        self._defaults, self._clock = defaults, clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self.reset(None)

    def reset(self, settings: VendorSettings | None) -> None:
        now = self._clock()
        ttl = settings.token_ttl_s if settings else None
        grants = [replace(g, expires_at=now + ttl if ttl else None) for g in self._defaults]
        for extra in settings.credentials if settings else ():
            grants.append(_grant_from(extra, now, ttl))
        with self._lock:
            self._grants = {g.token: g for g in grants}
            self._ttl = ttl

    def lookup(self, token: str) -> Grant | None:
        return self._grants.get(token)

    def mint(self, refresh_token: str, default_ttl_s: float) -> Grant | None:
        """A new access token for a refresh token that one of the grants carries (OAuth refresh)."""
        with self._lock:
            parent = next((g for g in self._grants.values() if g.refresh_token == refresh_token), None)
            if parent is None:
                return None
            ttl = self._ttl or default_ttl_s
            grant = replace(parent, token=f"oauth-{secrets.token_hex(12)}", expires_at=self._clock() + ttl)
            self._grants[grant.token] = grant
            return grant


def _grant_from(credential: Credential, now: float, ttl: float | None) -> Grant:
    lifetime = credential.expires_in_s if credential.expires_in_s is not None else ttl
    return Grant(
        token=credential.token,
        email=credential.email,
        scopes=frozenset(credential.scopes) if credential.scopes is not None else None,
        role=credential.role,
        expires_at=now + lifetime if lifetime is not None else None,
        refresh_token=credential.refresh_token,
    )
