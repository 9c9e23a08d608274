"""HubSpot's endpoints and what each one does, for the access policy (see `core/access.py`).

From HubSpot's CRM v3 object APIs (../shared/reference/openapi/hubspot-*.json): a search or a batch read is a
POST that reads. Batch upsert is left out on purpose: it creates or updates, and a connector allowed only one of
the two must not reach the other through it. The OAuth token call is the credential's own and never goes
through the client.
"""

from __future__ import annotations

from integration_assets.core.access import Operation, RouteTable

__all__ = ["OBJECT_TYPES", "ROUTES"]

OBJECT_TYPES = ("companies", "contacts", "deals")

READ, CREATE, UPDATE, DELETE = Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.DELETE


def _object_routes(object_type: str) -> list[tuple[str, str, str, Operation]]:
    base = f"/crm/v3/objects/{object_type}"
    return [
        ("GET", base, object_type, READ),
        ("GET", base + "/{id}", object_type, READ),
        ("POST", base + "/search", object_type, READ),
        ("POST", base + "/batch/read", object_type, READ),
        ("POST", base, object_type, CREATE),
        ("POST", base + "/batch/create", object_type, CREATE),
        ("PATCH", base + "/{id}", object_type, UPDATE),
        ("POST", base + "/batch/update", object_type, UPDATE),
        ("DELETE", base + "/{id}", object_type, DELETE),
        ("POST", base + "/batch/archive", object_type, DELETE),
        ("GET", f"/crm/v4/objects/{object_type}/{{id}}/associations/{{to_type}}", object_type, READ),
        ("GET", f"/crm/v3/properties/{object_type}", object_type, READ),
    ]


ROUTES = RouteTable.of(
    "crm",
    [
        *(route for object_type in OBJECT_TYPES for route in _object_routes(object_type)),
        ("GET", "/crm/v3/pipelines/deals", "deals", READ),
        ("GET", "/crm/v3/pipelines/deals/{pipeline_id}", "deals", READ),
    ],
)
