"""Zendesk's side of the write-back: organizations updated with optimistic locking.

Every update sends `safe_update: true` with the `updated_stamp` it read, so Zendesk refuses (409) a write
based on a stale read instead of overwriting a change made in between; the flow then re-reads and decides
again. `organization_fields` is sent whole (what was read, with the flow's fields changed), so fields the
flow does not own keep their values whichever way the API merges them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_assets.core.access import Operation
from integration_assets.core.http import ApiClient
from integration_assets.core.timeutil import iso_to_ms

__all__ = ["ZendeskWrites", "field_name"]


def field_name(path: str) -> str:
    """`organization_fields.plan` (a field dictionary path) → `plan`."""
    if not path.startswith("organization_fields."):
        raise ValueError(f"{path!r} is not a Zendesk organization field path")
    return path.removeprefix("organization_fields.")


class ZendeskWrites:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def read_organization(self, organization_id: str) -> dict:
        return self.client.call(
            Operation.READ,
            "organizations",
            "GET",
            "/api/v2/organizations/{id}.json",
            path_params={"id": organization_id},
            record_id=organization_id,
        ).body["organization"]

    def update_organization_fields(self, organization: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
        """Raises a CONFLICT IntegrationError (409) when the organization changed since it was read."""
        body = {
            "organization": {
                "organization_fields": {**(organization.get("organization_fields") or {}), **changes},
                "safe_update": True,
                "updated_stamp": organization["updated_at"],
            }
        }
        return self.client.call(
            Operation.UPDATE,
            "organizations",
            "PUT",
            "/api/v2/organizations/{id}.json",
            path_params={"id": organization["id"]},
            json_body=body,
            idempotent=True,  # safe_update: a repeat after a lost answer is refused, never applied twice
            record_id=str(organization["id"]),
        ).body["organization"]

    @staticmethod
    def updated_ms(organization: Mapping[str, Any]) -> int | None:
        return iso_to_ms(organization.get("updated_at"))

    @staticmethod
    def fields(organization: Mapping[str, Any]) -> dict[str, Any]:
        return dict(organization.get("organization_fields") or {})
