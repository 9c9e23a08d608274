"""HubSpot's own count of live records: a search without filters answers `total` (archived ones excluded)."""

from __future__ import annotations

from integration_assets.core.access import Operation
from integration_assets.core.http import ApiClient


def live_total(client: ApiClient, object_type: str) -> tuple[int, frozenset[str] | None]:
    """(live records HubSpot holds, None): HubSpot gives a count in one call, not the ids."""
    body = client.call(
        Operation.READ,
        object_type,
        "POST",
        "/crm/v3/objects/{object_type}/search",
        path_params={"object_type": object_type},
        json_body={"filterGroups": [], "properties": ["hs_object_id"], "limit": 1},
    ).body
    return int(body["total"]), None
