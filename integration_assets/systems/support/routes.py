"""Zendesk's endpoints and what each one does, for the access policy (see `core/access.py`).

From Zendesk's Support API (../shared/reference/openapi/zendesk.json); the `.json` suffix is optional there, so
it is here. `create_or_update` is left out on purpose: it creates or updates, and a connector allowed only one
of the two must not reach the other through it.
"""

from __future__ import annotations

from integration_assets.core.access import Operation, RouteTable

__all__ = ["OBJECT_TYPES", "ROUTES"]

OBJECT_TYPES = ("organizations", "users", "tickets")

READ, CREATE, UPDATE, DELETE = Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.DELETE


def _object_routes(object_type: str) -> list[tuple[str, str, str, Operation]]:
    base, export = f"/api/v2/{object_type}", f"/api/v2/incremental/{object_type}"
    routes = [
        ("GET", export, object_type, READ),
        ("GET", base, object_type, READ),
        ("GET", base + "/show_many", object_type, READ),
        ("GET", base + "/count", object_type, READ),
        ("GET", base + "/{id}", object_type, READ),
        ("POST", base, object_type, CREATE),
        ("PUT", base + "/{id}", object_type, UPDATE),
        ("DELETE", base + "/{id}", object_type, DELETE),
    ]
    if object_type != "organizations":  # cursor exports exist for tickets and users only
        routes.append(("GET", export + "/cursor", object_type, READ))
    return routes


ROUTES = RouteTable.of(
    "support",
    [
        *(route for object_type in OBJECT_TYPES for route in _object_routes(object_type)),
        ("GET", "/api/v2/users/me", "users", READ),
    ],
    optional_suffix=".json",
)
