"""HubSpot OAuth: refreshing an access token, and the token's own metadata."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, quote

from integration_sandbox.credentials import HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET
from integration_sandbox.kit import Request, Response
from integration_sandbox.vendors.hubspot.core import HubSpotCore
from integration_sandbox.vendors.hubspot.definitions import OBJECT_TYPES

OAUTH_TTL_S = 1800
HUB_ID, APP_ID = 4_242_424, 1_234_567


class OAuth(HubSpotCore):
    def _oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return self._oauth_error(400, "BAD_GRANT_TYPE", "grant_type must be refresh_token in the sandbox")
        if form.get("client_id") != HUBSPOT_CLIENT_ID:
            return self._oauth_error(400, "BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != HUBSPOT_CLIENT_SECRET:
            return self._oauth_error(400, "BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant = self.credentials.mint(form.get("refresh_token") or "", OAUTH_TTL_S)
        if grant is None:
            return self._oauth_error(400, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        expires_in = max(0, round(grant.expires_at - time.time()))
        body = {
            "token_type": "bearer",
            "refresh_token": grant.refresh_token,
            "access_token": grant.token,
            "expires_in": expires_in,
            "token_use": "access_token",  # required by HubSpot's OAuth document (refresh answers mint access tokens)
        }
        return Response(200, body)

    def _oauth_token_info(self, request: Request) -> Response:
        token = request.params["token"]
        grant = self.credentials.lookup(token)
        if grant is None:
            return self._oauth_error(404, "NOT_FOUND", f"Token {quote(token)} not found")
        remaining = 10 * 365 * 86_400 if grant.expires_at is None else max(0, int(grant.expires_at - time.time()))
        if grant.scopes is None:
            scopes = ["oauth", *(f"crm.objects.{t}.{a}" for t in OBJECT_TYPES for a in ("read", "write"))]
        else:
            scopes = sorted(grant.scopes)
        body = {
            "token": token,
            "user": grant.email or "admin@sandbox.test",
            "hub_domain": "sandbox.hubspot.test",
            "scopes": scopes,
            "hub_id": HUB_ID,
            "app_id": APP_ID,
            "expires_in": remaining,
            "user_id": 1,
            "token_type": "access",
        }
        return Response(200, body)

    def _oauth_error(self, status: int, code: str, message: str) -> Response:
        """OAuth v1's own `status` code, and the `category` every HubSpot error body carries."""
        request_id = self._correlation_id()
        category = "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR"
        return Response(status, {"status": code, "message": message, "correlationId": request_id, "category": category})
