"""What a connector reads to learn HubSpot's schema: property definitions and the default deal pipeline."""

from __future__ import annotations

from integration_sandbox.kit import Request, Response
from integration_sandbox.vendors.hubspot.core import HubSpotCore
from integration_sandbox.vendors.hubspot.definitions import (
    DEAL_STAGES,
    DEFAULT_PROPERTIES,
    MODIFIED,
    PIPELINE_CREATED,
    SINGULAR,
    UNIQUE_PROPERTIES,
)
from integration_sandbox.vendors.hubspot.values import kind_of


class Pipelines(HubSpotCore):
    def _properties(self, object_type: str, request: Request) -> Response:
        """Property definitions: the defaults plus every property the records carry."""
        names = dict.fromkeys(DEFAULT_PROPERTIES[object_type])
        for record in self.collections[object_type]:
            names.update(dict.fromkeys(record.get("properties") or {}))
        results = []
        for order, name in enumerate(sorted(names)):
            kind = kind_of(name)
            type_, field = {"date": ("datetime", "date"), "number": ("number", "number")}.get(kind, ("string", "text"))
            options = []
            if name == "dealstage":
                type_, field = "enumeration", "select"
                options = [
                    {"label": label, "value": stage, "displayOrder": i, "hidden": False}
                    for i, (stage, label, _, _) in enumerate(DEAL_STAGES)
                ]
            results.append(
                {
                    "name": name,
                    "label": name.replace("hs_", "").replace("_", " ").capitalize(),
                    "type": type_,
                    "fieldType": field,
                    "groupName": f"{SINGULAR[object_type]}information",
                    "description": "",
                    "options": options,
                    "displayOrder": order,
                    "calculated": False,
                    "externalOptions": False,
                    "hasUniqueValue": name in ("hs_object_id", UNIQUE_PROPERTIES.get(object_type)),
                    "hidden": False,
                    "formField": True,
                    "createdAt": PIPELINE_CREATED,
                    "updatedAt": PIPELINE_CREATED,
                    "archived": False,
                    "modificationMetadata": {
                        "archivable": name not in DEFAULT_PROPERTIES[object_type],
                        "readOnlyDefinition": name in DEFAULT_PROPERTIES[object_type],
                        "readOnlyValue": name in ("hs_object_id", "createdate", MODIFIED[object_type]),
                    },
                }
            )
        return Response(200, {"results": results})

    def _pipelines(self, request: Request) -> Response:
        return Response(200, {"results": [default_pipeline()]})

    def _pipeline(self, request: Request) -> Response:
        if request.params["pipelineId"] != "default":
            raise self._fail(request, 404, "OBJECT_NOT_FOUND", f"Pipeline {request.params['pipelineId']} not found.")
        return Response(200, default_pipeline())


def default_pipeline() -> dict:
    stages = [
        {
            "id": stage,
            "label": label,
            "displayOrder": order,
            "metadata": {"isClosed": closed, "probability": probability},
            "createdAt": PIPELINE_CREATED,
            "updatedAt": PIPELINE_CREATED,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for order, (stage, label, probability, closed) in enumerate(DEAL_STAGES)
    ]
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": PIPELINE_CREATED,
        "updatedAt": PIPELINE_CREATED,
        "archived": False,
    }
