"""Zendesk's own count of live records: `/api/v2/{type}/count.json` (deleted tickets, inactive users and
deleted organizations excluded)."""

from __future__ import annotations

from integration_assets.core.access import Operation
from integration_assets.core.http import ApiClient


def live_total(client: ApiClient, object_type: str) -> tuple[int, frozenset[str] | None]:
    """(live records Zendesk counts, None). Zendesk refreshes counts above 100,000 lazily (`refreshed_at`)."""
    body = client.call(
        Operation.READ, object_type, "GET", "/api/v2/{object_type}/count.json", path_params={"object_type": object_type}
    ).body
    return int(body["count"]["value"]), None
