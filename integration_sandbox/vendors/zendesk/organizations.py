"""Zendesk organizations: what an organization record may hold (a name no other live organization has), and
what a deleted one leaves behind."""

from __future__ import annotations

from typing import Any

from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import iso, listed
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid
from integration_sandbox.vendors.zendesk.writes import Writes


class Organizations(Writes):
    def _check_organization(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        name = writable.get("name", record.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise record_invalid(problem("name", "Name: cannot be blank", "BlankValue"))
        live = listed("organizations")
        if "name" in writable and any(
            str(o.get("name") or "").strip().lower() == name.strip().lower() and o["id"] != record["id"] and live(o)
            for o in self._collection("organizations")
        ):
            raise record_invalid(problem("name", "Name: has already been taken", "DuplicateValue"))

    def _tombstone(self, record: Record, now: float) -> Record:
        """A deleted organization as Zendesk keeps it: gone from show (404), lists, show_many and count, but
        still in the incremental export, with `deleted_at` and its change time moved to the deletion.

        Zendesk documents the deletion (`DELETE /api/v2/organizations/{id}`: 204, no body; the published
        OpenAPI document, shared/reference/openapi/zendesk.json) and an export of "items that changed or were
        created" since `start_time`, compared with `generated_timestamp` (developer.zendesk.com, Incremental
        Exports). Its `OrganizationObject` does not declare `deleted_at` (nor forbids it); connectors built on
        the organization export declare it as a nullable ISO-8601 date-time set on deleted organizations
        (Airbyte's source-zendesk-support `schemas/organizations.json`), which is what the sandbox sends: the
        field on the tombstone only, in the format of `updated_at`.
        """
        gone = dict(record, deleted_at=iso(now))
        return self._touched(gone, now)
