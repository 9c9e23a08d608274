"""HubSpot's side of the write-back: deal properties re-read and patched one record at a time.

HubSpot has no idempotency keys and no If-Match for CRM objects: a PATCH of absolute values is safe to repeat,
and the flow compares the record's last change with the source event before patching, since HubSpot itself
would let the last write win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_assets.core.access import Operation
from integration_assets.core.http import ApiClient
from integration_assets.core.timeutil import iso_to_ms

__all__ = ["HubSpotWrites", "property_name"]

MODIFIED = {"deals": "hs_lastmodifieddate", "companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}


def property_name(path: str) -> str:
    """`properties.invoice_status` (a field dictionary path) → `invoice_status`."""
    if not path.startswith("properties."):
        raise ValueError(f"{path!r} is not a HubSpot property path")
    return path.removeprefix("properties.")


class HubSpotWrites:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def read(self, object_type: str, record_id: str, properties: list[str], *, history: bool = False) -> dict:
        """The record's properties; with `history`, HubSpot's `propertiesWithHistory` for them as well (when it
        serves it: each value with the moment it was set)."""
        params = {"properties": ",".join([*properties, MODIFIED[object_type]])}
        if history:
            params["propertiesWithHistory"] = ",".join(properties)
        return self.client.call(
            Operation.READ,
            object_type,
            "GET",
            "/crm/v3/objects/{object_type}/{id}",
            path_params={"object_type": object_type, "id": record_id},
            params=params,
            record_id=record_id,
        ).body

    @staticmethod
    def property_changed_ms(record: Mapping[str, Any], name: str, value: Any) -> int | None:
        """When the property took its current `value`, from `propertiesWithHistory`; None without a history."""
        history = (record.get("propertiesWithHistory") or {}).get(name) or []
        moments = [iso_to_ms(h.get("timestamp")) for h in history if isinstance(h, Mapping) and h.get("value") == value]
        moments = [m for m in moments if m is not None]
        return max(moments) if moments else None

    def update(self, object_type: str, record_id: str, properties: Mapping[str, Any]) -> dict:
        return self.client.call(
            Operation.UPDATE,
            object_type,
            "PATCH",
            "/crm/v3/objects/{object_type}/{id}",
            path_params={"object_type": object_type, "id": record_id},
            json_body={"properties": {k: ("" if v is None else str(v)) for k, v in properties.items()}},
            idempotent=True,  # absolute values: repeating the PATCH sets the same thing
            record_id=record_id,
        ).body

    @staticmethod
    def modified(object_type: str, record: Mapping[str, Any]) -> str | None:
        """The record's last change as HubSpot stamps it (ISO 8601)."""
        return (record.get("properties") or {}).get(MODIFIED[object_type]) or record.get("updatedAt")

    @staticmethod
    def modified_ms(object_type: str, record: Mapping[str, Any]) -> int | None:
        return iso_to_ms(HubSpotWrites.modified(object_type, record))
