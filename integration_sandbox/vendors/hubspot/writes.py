"""HubSpot writes one record at a time: create, update (by id or a unique property) and archive."""

from __future__ import annotations

import time
from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.hubspot.associations import Associations
from integration_sandbox.vendors.hubspot.definitions import MODIFIED, UNIQUE_PROPERTIES
from integration_sandbox.vendors.hubspot.values import as_string, iso


class Writes(Associations):
    def _create(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        record = self._new(object_type, body, request, time.time(), pending={})
        self._save(object_type, record)
        return Response(201, self._render_full(object_type, record))

    def _update(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is None or record.get("archived"):
            raise self._not_found(request, object_type, request.params["id"])
        updated = self._changed(object_type, record, body.get("properties"), request, time.time())
        self._save(object_type, updated)
        return Response(200, self._render_full(object_type, updated))

    def _archive(self, object_type: str, request: Request) -> Response:
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is not None:
            self.delete(object_type, record["id"], time.time())
        return Response(204)

    def _new(self, object_type: str, body: dict, request: Request, now: float, pending: dict) -> Record:
        """A record to create from `{"properties", "associations"}`, checked but not stored yet."""
        given = body.get("properties") if isinstance(body, dict) else None
        if given is not None and not isinstance(given, dict):
            raise self._fail(request, 400, "VALIDATION_ERROR", "properties must be an object of property values.")
        props = {k: as_string(v) for k, v in (given or {}).items() if k not in ("hs_object_id", MODIFIED[object_type])}
        self._check_unique(object_type, props, None, request, pending)
        collection = self.collections[object_type]
        number = self._next_id[object_type]
        while collection.get(str(number)) is not None or str(number) in pending:
            number += 1
        self._next_id[object_type] = number + 1
        record_id, stamp = str(number), iso(now)
        props.setdefault("createdate", stamp)
        props.update({"hs_object_id": record_id, MODIFIED[object_type]: stamp})
        record: Record = {
            "id": record_id,
            "properties": props,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        associations = self._new_associations(object_type, body.get("associations"), request, pending)
        if associations:
            record["associations"] = associations
            companies = associations.get("companies", {}).get("results", [])
            primary = [c["id"] for c in companies if not c["type"].endswith("_unlabeled")]
            if object_type == "contacts" and primary and not props.get("associatedcompanyid"):
                props["associatedcompanyid"] = primary[0]
        return record

    def _changed(self, object_type: str, record: Record, given: Any, request: Request, now: float) -> Record:
        if not isinstance(given, dict):
            raise self._fail(request, 400, "VALIDATION_ERROR", "properties must be an object of property values.")
        changes = {
            k: as_string(v) for k, v in given.items() if k not in ("hs_object_id", "createdate", MODIFIED[object_type])
        }
        self._check_unique(object_type, changes, record["id"], request, {})
        props = {**(record.get("properties") or {}), **changes}
        return self._touched(object_type, {**record, "properties": props}, now)

    def _check_unique(self, object_type: str, props: dict, own_id: str | None, request: Request, pending: dict) -> None:
        name = UNIQUE_PROPERTIES.get(object_type)
        value = props.get(name) if name else None
        if not value:
            return
        existing = self._find(object_type, value, name)
        if existing is not None and existing["id"] != own_id and not existing.get("archived"):
            raise self._fail(request, 409, "CONFLICT", f"Contact already exists. Existing ID: {existing['id']}")
        if any(
            as_string((p.get("properties") or {}).get(name)).casefold() == value.casefold() for p in pending.values()
        ):
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Duplicate {name} {value!r} in batch input.")
