"""Zendesk organizations: what an organization record may hold (a name no other organization has)."""

from __future__ import annotations

from typing import Any

from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid
from integration_sandbox.vendors.zendesk.writes import Writes


class Organizations(Writes):
    def _check_organization(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        name = writable.get("name", record.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise record_invalid(problem("name", "Name: cannot be blank", "BlankValue"))
        if "name" in writable and any(
            str(o.get("name") or "").strip().lower() == name.strip().lower() and o["id"] != record["id"]
            for o in self._collection("organizations")
        ):
            raise record_invalid(problem("name", "Name: has already been taken", "DuplicateValue"))
