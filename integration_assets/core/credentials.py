"""Credentials for ApiClient: static bearer tokens, HTTP basic, and OAuth that refreshes itself."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field

import requests


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
            )
            if answer.status_code != 200:
                return False
            grant = answer.json()
            self.access_token = grant["access_token"]
            self.refresh_token = grant.get("refresh_token", self.refresh_token)
            self.expires_at = time.time() + float(grant.get("expires_in", 1800))
            return True

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_token, self.refresh_token, self.client_secret) if s)
