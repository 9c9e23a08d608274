"""HubSpot associations: read through v4 (`associationTypes` with ids and labels), written with new records."""

from __future__ import annotations

from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.vendors.hubspot.core import HubSpotCore
from integration_sandbox.vendors.hubspot.definitions import ASSOCIATIONS_MAX, PLURAL, PRIMARY_IDS, SINGULAR, TYPE_TARGET
from integration_sandbox.vendors.hubspot.graph import type_label
from integration_sandbox.vendors.hubspot.values import as_number, as_string


class Associations(HubSpotCore):
    def _associations(self, object_type: str, request: Request) -> Response:
        """v4: `{"results":[{"toObjectId", "associationTypes":[{category, typeId, label}]}], "paging"?}`."""
        record = self.collections[object_type].get(request.params["id"])
        if record is None or record.get("archived"):
            raise self._not_found(request, object_type, request.params["id"])
        to_type = PLURAL.get(request.params["toType"].lower())
        if to_type is None:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Unknown object type {request.params['toType']!r}.")
        limit = max(1, min(self._int(request, request.arg("limit"), "limit", ASSOCIATIONS_MAX), ASSOCIATIONS_MAX))
        offset = self._int(request, request.arg("after"), "after", 0)
        links = self._graph.links(object_type, record["id"], to_type)
        page = [
            {
                "toObjectId": str(to_id),  # a string, as the v4 document declares it
                "associationTypes": [
                    {
                        "category": "HUBSPOT_DEFINED",
                        "typeId": t,
                        "label": "Primary" if t in PRIMARY_IDS else None,
                    }
                    for t in type_ids
                ],
            }
            for to_id, type_ids in links[offset : offset + limit]
        ]
        body: dict[str, Any] = {"results": page}
        if offset + limit < len(links):
            after = str(offset + limit)
            link = f"{request.base_url}{request.path}?limit={limit}&after={after}"
            body["paging"] = {"next": {"after": after, "link": link}}
        return Response(200, body)

    def _new_associations(self, object_type: str, specs: Any, request: Request, pending: dict) -> dict:
        """`[{"to": {"id"}, "types": [{"associationCategory", "associationTypeId"}]}]` → stored v3 shape."""
        if not specs:
            return {}
        if not isinstance(specs, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "associations must be a list.")
        stored: dict[str, dict[str, list]] = {}
        for spec in specs:
            to_id = as_string(((spec or {}).get("to") or {}).get("id"))
            for kind in (spec or {}).get("types") or []:
                type_id = as_number((kind or {}).get("associationTypeId"))
                to_type = TYPE_TARGET.get((object_type, int(type_id))) if type_id is not None else None
                if to_type is None:
                    raise self._fail(
                        request,
                        400,
                        "VALIDATION_ERROR",
                        f"associationTypeId {kind.get('associationTypeId')!r} is invalid from {object_type}.",
                    )
                target = self.collections[to_type].get(to_id)
                if target is None or target.get("archived"):
                    raise self._fail(request, 400, "VALIDATION_ERROR", f"No {SINGULAR[to_type]} with id {to_id}.")
                label = type_label(object_type, to_type, int(type_id))
                results = stored.setdefault(to_type, {"results": []})["results"]
                if {"id": to_id, "type": label} not in results:
                    results.append({"id": to_id, "type": label})
        return stored
