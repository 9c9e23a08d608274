"""HubSpot batch endpoints: read, create, update, upsert and archive up to 100 records, with 207 partials."""

from __future__ import annotations

import time
from collections.abc import Callable

from integration_sandbox.kit import Request, Response, dumps
from integration_sandbox.store import Record
from integration_sandbox.vendors.hubspot.definitions import BATCH_MAX, SINGULAR
from integration_sandbox.vendors.hubspot.values import as_string, is_true, iso
from integration_sandbox.vendors.hubspot.writes import Writes


class Batch(Writes):
    def _batch_read(self, object_type: str, request: Request) -> Response:
        body, inputs = self._batch(request)
        started, archived = iso(time.time()), is_true(request.arg("archived"))
        view, shape = self._view(object_type, body.get("properties") or [], [])
        found, missing = [], []
        for item in inputs:
            raw = as_string(item.get("id") if isinstance(item, dict) else item)
            record = self._find(object_type, raw, body.get("idProperty"))
            if record is None or bool(record.get("archived")) != archived:
                missing.append(raw)
            else:
                found.append(self.render(object_type, record, view, shape))
        errors = [self._missing_error(object_type, missing, "get")] if missing else []
        return self._batch_response(200, found, errors, started)

    def _batch_create(self, object_type: str, request: Request) -> Response:
        _, inputs = self._batch(request)
        started, now, pending = iso(time.time()), time.time(), {}
        records = []
        for item in inputs:
            record = self._new(object_type, item if isinstance(item, dict) else {}, request, now, pending)
            pending[record["id"]] = record
            records.append(record)
        for record in records:
            self._save(object_type, record)
        rendered = [self._render_full(object_type, r) for r in records]
        return self._batch_response(201, rendered, [], started)

    def _batch_update(self, object_type: str, request: Request) -> Response:
        body, inputs = self._batch(request)
        started, now = iso(time.time()), time.time()
        done, missing = [], []
        for item in inputs:
            item = item if isinstance(item, dict) else {}
            raw = as_string(item.get("id"))
            record = self._find(object_type, raw, item.get("idProperty") or body.get("idProperty"))
            if record is None or record.get("archived"):
                missing.append(raw)
                continue
            updated = self._changed(object_type, record, item.get("properties"), request, now)
            self._save(object_type, updated)
            done.append(self._render_full(object_type, updated))
        errors = [self._missing_error(object_type, missing, "update")] if missing else []
        return self._batch_response(200, done, errors, started)

    def _batch_upsert(self, object_type: str, request: Request) -> Response:
        """Update the record whose `idProperty` equals `id`, else create it with that value."""
        _, inputs = self._batch(request)
        started, now = iso(time.time()), time.time()
        keys = [
            (as_string(i.get("idProperty") or "hs_object_id"), as_string(i.get("id")))
            for i in inputs
            if isinstance(i, dict)
        ]
        repeated = sorted({v for k, v in keys if keys.count((k, v)) > 1})
        if len(keys) != len(inputs) or repeated:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {repeated}.")
        done, missing = [], []
        for item, (id_property, raw) in zip(inputs, keys, strict=True):
            record = self._find(object_type, raw, id_property)
            if record is not None and not record.get("archived"):
                updated, new = self._changed(object_type, record, item.get("properties"), request, now), False
            elif id_property == "hs_object_id":
                missing.append(raw)
                continue
            else:
                properties = {**(item.get("properties") or {}), id_property: raw}
                updated, new = self._new(object_type, {"properties": properties}, request, now, {}), True
            self._save(object_type, updated)
            done.append(self.render(object_type, updated, ("upsert", new), self._upsert_shape(object_type, new)))
        errors = [self._missing_error(object_type, missing, "update")] if missing else []
        return self._batch_response(200, done, errors, started)

    def _batch_archive(self, object_type: str, request: Request) -> Response:
        _, inputs = self._batch(request)
        now = time.time()
        for item in inputs:
            raw = as_string(item.get("id") if isinstance(item, dict) else item)
            if self.collections[object_type].get(raw) is not None:
                self.delete(object_type, raw, now)
        return Response(204)

    def _batch(self, request: Request) -> tuple[dict, list]:
        body = self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "inputs must be a list.")
        if len(inputs) > BATCH_MAX:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Batch input has {len(inputs)} inputs; at most {BATCH_MAX} allowed.",
            )
        return body, inputs

    def _upsert_shape(self, object_type: str, new: bool) -> Callable[[Record], dict]:
        full = self._shape(object_type, None)
        return lambda record: {**full(record), "new": new}

    def _batch_response(self, status: int, rendered: list[bytes], errors: list[dict], started: str) -> Response:
        out = b'{"status":"COMPLETE","results":[' + b",".join(rendered) + b"]"
        if errors:
            status = 207
            out += b',"numErrors":%d,"errors":' % len(errors) + dumps(errors)
        out += b',"startedAt":"' + started.encode() + b'","completedAt":"' + iso(time.time()).encode() + b'"}'
        return Response(status, out)

    def _missing_error(self, object_type: str, ids: list[str], verb: str) -> dict:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not {verb} some {SINGULAR[object_type].upper()} objects, they may be deleted "
            "or not exist. Check that ids are valid.",
            "context": {"ids": ids},
            "errors": [],
            "links": {},
        }
