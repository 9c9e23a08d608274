"""Zendesk users: who `/users/me` is, and what a user record may hold (a name, a role, a unique email)."""

from __future__ import annotations

from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import USER_ROLES
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid
from integration_sandbox.vendors.zendesk.writes import Writes


class Users(Writes):
    def _me(self, request: Request) -> Response:
        grant = request.grant
        email = (grant.email or "").lower() if grant else ""
        users = self._collection("users")
        found = next((u for u in users if email and str(u.get("email") or "").lower() == email), None)
        if found is not None:
            return Response(200, b'{"user":' + self.render("users", found) + b"}")
        synthetic = {
            "id": None, "name": email.split("@")[0] or "Anonymous user", "email": email or None,
            "role": grant.role if grant else "end-user", "active": True,
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
