"""Zendesk users: who `/users/me` is, and what a user record may hold (a name, a role, a unique email)."""

from __future__ import annotations

import zlib
from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import USER_ROLES
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid
from integration_sandbox.vendors.zendesk.writes import Writes

# Signed-in people who are no user record of the dataset (the default admin, credentials from the fault
# profile) still have an id, as every Zendesk login does: stable per email, below the dataset's user ids.
SIGNED_IN_ID_BASE = 369_000_000


def signed_in_user_id(login: str) -> int:
    """The id of a login (its email, or an OAuth token's own value when it names no email)."""
    return SIGNED_IN_ID_BASE + zlib.crc32(login.encode()) % 1_000_000


class Users(Writes):
    def _me(self, request: Request) -> Response:
        grant = request.grant
        email = (grant.email or "").lower() if grant else ""
        users = self._collection("users")
        found = next((u for u in users if email and str(u.get("email") or "").lower() == email), None)
        if found is not None:
            return Response(200, b'{"user":' + self.render("users", found) + b"}")
        user_id = signed_in_user_id(email or (grant.token if grant else ""))
        synthetic = {
            "id": user_id, "url": f"{request.base_url}/api/v2/users/{user_id}.json",
            "name": email.split("@")[0] or "Anonymous user", "email": email or None,
            "role": grant.role if grant else "end-user", "active": True, "verified": True,
        }  # fmt: skip
        return Response(200, {"user": synthetic})

    def _check_user(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        errors: dict[str, list[dict[str, str]]] = {}
        name = writable.get("name", record.get("name"))
        if not isinstance(name, str) or not name.strip():
            errors.update(problem("name", "Name: is too short (minimum one character)", "BlankValue"))
        role = writable.get("role", record.get("role"))
        if role not in USER_ROLES:
            errors.update(problem("role", f"Role: {role} is not valid", "InvalidValue"))
        email = writable.get("email")
        if email is not None:
            if not isinstance(email, str) or "@" not in email:
                errors.update(problem("email", f"Email: {email} is not properly formatted", "InvalidFormat"))
            elif any(
                str(u.get("email") or "").lower() == email.lower()
                and u["id"] != record["id"]
                and u.get("active") is not False
                for u in self._collection("users")
            ):
                errors.update(
                    problem("email", f"Email: {email} is already being used by another user", "DuplicateValue")
                )
        org = writable.get("organization_id")
        if org is not None and self._reachable("organizations", org) is None:
            errors.update(problem("organization_id", "Organization: is invalid", "InvalidValue"))
        if errors:
            raise record_invalid(errors)
