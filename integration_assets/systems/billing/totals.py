"""Stripe's live records: Stripe lists have no total (`total_count` is gone from current API versions), so the
ids are listed, 100 a page; that also tells exactly which records are missing or extra."""

from __future__ import annotations

from integration_assets.core.access import Operation
from integration_assets.core.http import ApiClient

PAGE = 100


def live_total(client: ApiClient, object_type: str) -> tuple[int, frozenset[str] | None]:
    """(live records Stripe lists, their ids). Deleted customers and deleted draft invoices leave the list."""
    ids: set[str] = set()
    params: dict[str, object] = {"limit": PAGE}
    while True:
        body = client.call(
            Operation.READ,
            object_type,
            "GET",
            "/v1/{object_type}",
            path_params={"object_type": object_type},
            params=params,
        ).body
        ids.update(str(o["id"]) for o in body["data"] if not o.get("deleted"))
        if not (body["has_more"] and body["data"]):
            return len(ids), frozenset(ids)
        params["starting_after"] = body["data"][-1]["id"]
