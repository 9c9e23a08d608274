"""Zendesk writes: create, update (with `safe_update`), create-or-update and delete, for every record type.

What a field may hold is each type's own rule: `tickets.py`, `users.py` and `organizations.py` define them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_sandbox.kit import Host, Request, Response, VendorError, dumps
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.core import ZendeskCore
from integration_sandbox.vendors.zendesk.definitions import BASE_FIELDS, READ_ONLY, SINGULAR, epoch, iso, listed
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid

IDEMPOTENCY_TTL_S = 2 * 3600


@dataclass(frozen=True)
class _Remembered:
    """A ticket creation stored under its Idempotency-Key."""

    digest: str
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: float


class Writes(ZendeskCore):
    def __init__(self, dataset_dir: Path | None, sandbox: Host) -> None:
        super().__init__(dataset_dir, sandbox)
        self._idempotency: dict[str, _Remembered] = {}  # ticket creations by Idempotency-Key
        self._audit_ids = 0

    def _payload(self, request: Request, object_type: str) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise VendorError(400, {"error": "InvalidJSON", "description": "The request body is not a JSON object"})
        fields = body.get(SINGULAR[object_type])
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise record_invalid(problem("base", f"{SINGULAR[object_type]} must be an object", "InvalidValue"))
        return fields

    def _template(self, object_type: str) -> Record:
        collection = self._collection(object_type)
        sample = collection.get(collection.last_id()) if len(collection) else None
        template: Record = {}
        for key, value in (sample or {}).items():
            template[key] = [] if isinstance(value, list) else {} if isinstance(value, dict) else None
        for key, value in BASE_FIELDS[object_type].items():
            if key not in template or value is not None:
                template[key] = copy.deepcopy(value)
        return template

    def _url(self, object_type: str, record_id: int) -> str:
        collection = self._collection(object_type)
        sample = collection.get(collection.last_id()) if len(collection) else None
        url = sample.get("url") if sample else None
        if isinstance(url, str) and "/" in url:
            return f"{url.rsplit('/', 1)[0]}/{record_id}.json"
        return f"{self.base_url}/api/v2/{object_type}/{record_id}.json"

    def _next_id(self, object_type: str) -> int:
        last = self._collection(object_type).last_id()
        return (last or 0) + 1

    def _create(self, request: Request, object_type: str) -> Response:
        if object_type == "tickets":
            return self._with_idempotency(
                request, lambda: self._insert(request, object_type, self._payload(request, object_type))
            )
        return self._insert(request, object_type, self._payload(request, object_type))

    def _insert(self, request: Request, object_type: str, fields: dict[str, Any]) -> Response:
        now = time.time()
        record = self._template(object_type)
        record_id = self._next_id(object_type)
        record.update(id=record_id, url=self._url(object_type, record_id), created_at=iso(now))
        events = self._apply(object_type, record, fields, request, creating=True)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 201, events, now)

    def _update(self, request: Request, object_type: str) -> Response:
        record = copy.deepcopy(self._record(request, object_type))
        fields = self._payload(request, object_type)
        self._checkstamp(fields, record)
        if object_type == "tickets" and record.get("status") == "closed":
            raise record_invalid(problem("status", "Status: closed prevents ticket update", "ClosedPreventsUpdate"))
        now = time.time()
        events = self._apply(object_type, record, fields, request, creating=False)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 200, events, now)

    def _create_or_update(self, request: Request, object_type: str) -> Response:
        fields = self._payload(request, object_type)
        existing = self._find_existing(object_type, fields)
        if existing is None:
            return self._insert(request, object_type, fields)
        record = copy.deepcopy(existing)
        self._checkstamp(fields, record)
        now = time.time()
        self._apply(object_type, record, fields, request, creating=False)
        self.store(object_type, self._touched(record, now))
        return self._written(object_type, record, 200, [], now)

    def _destroy(self, request: Request, object_type: str) -> Response:
        record = self._record(request, object_type)
        kept = self.delete(object_type, record["id"], time.time())
        if object_type == "users" and kept is not None:
            return Response(200, b'{"user":' + self.render("users", kept) + b"}")
        return Response(204)

    def _written(self, object_type: str, record: Record, status: int, events: list, now: float) -> Response:
        key = SINGULAR[object_type]
        body = b'{"' + key.encode() + b'":' + self.render(object_type, record)
        if object_type == "tickets":
            self._audit_ids += 1
            audit = {
                "id": record["id"] * 1000 + self._audit_ids,
                "ticket_id": record["id"],
                "created_at": iso(now),
                "author_id": record.get("submitter_id"),
                "metadata": {"system": {"client": "integration-sandbox"}, "custom": {}},
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "events": [dict(event, id=record["id"] * 1000 + i) for i, event in enumerate(events, 1)],
            }
            body += b',"audit":' + dumps(audit)
        headers = {"Location": self._url(object_type, record["id"])} if status == 201 else {}
        return Response(status, body + b"}", headers)

    @staticmethod
    def _checkstamp(fields: dict[str, Any], record: Record) -> None:
        if not fields.get("safe_update"):
            return
        stamp = fields.get("updated_stamp")
        if stamp is None:
            raise record_invalid(problem("updated_stamp", "Updated stamp: is required for a safe update", "BlankValue"))
        if epoch(stamp) is None or epoch(stamp) != epoch(record.get("updated_at")):
            raise VendorError(
                409,
                {
                    "error": "UpdateConflict",
                    "description": "Safe Update prevented the update due to outdated ticket data. "
                    "Please fetch the latest ticket data and try again.",
                },
            )

    def _find_existing(self, object_type: str, fields: dict[str, Any]) -> Record | None:
        collection = self._collection(object_type)
        if isinstance(fields.get("id"), int) and self._reachable(object_type, fields["id"]) is not None:
            return self._reachable(object_type, fields["id"])
        keys = ["external_id", "email"] if object_type == "users" else ["external_id"]
        for key in keys:
            wanted = fields.get(key)
            if wanted:
                for record in collection:
                    if str(record.get(key) or "").lower() == str(wanted).lower() and listed(object_type)(record):
                        return record
        return None

    def _apply(
        self, object_type: str, record: Record, fields: dict[str, Any], request: Request, *, creating: bool
    ) -> list[dict[str, Any]]:
        """Validates `fields` and writes them into `record`; returns the ticket audit's events."""
        writable = {k: v for k, v in fields.items() if k not in READ_ONLY and k in record}
        if object_type == "tickets":
            return self._apply_ticket(record, fields, writable, request, creating)
        if object_type == "users":
            self._check_user(record, writable, creating)
        else:
            self._check_organization(record, writable, creating)
        record.update(writable)
        return []

    def _with_idempotency(self, request: Request, create: Callable[[], Response]) -> Response:
        key = request.header("Idempotency-Key")
        if key is None:
            return create()
        if not key or len(key) > 255:
            raise VendorError(
                400,
                {
                    "error": "IdempotentRequestError",
                    "description": "Idempotency-Key must be 1 to 255 characters",
                },
            )
        now = time.time()
        for stale in [k for k, v in self._idempotency.items() if now - v.stored_at > IDEMPOTENCY_TTL_S]:
            del self._idempotency[stale]
        body = request.json()
        canonical = json.dumps(body, sort_keys=True).encode() if isinstance(body, dict) else request.body
        digest = hashlib.sha256(canonical).hexdigest()
        remembered = self._idempotency.get(key)
        if remembered is not None:
            if remembered.digest != digest:
                raise VendorError(
                    400,
                    {
                        "error": "IdempotentRequestError",
                        "description": "The idempotency key was already used with a different request body",
                    },
                    {"x-idempotency-lookup": "hit"},
                )
            return Response(remembered.status, remembered.body, {**remembered.headers, "x-idempotency-lookup": "hit"})
        response = create()
        response.headers["x-idempotency-lookup"] = "miss"
        if 200 <= response.status < 300:
            self._idempotency[key] = _Remembered(
                digest, response.status, response.payload(), dict(response.headers), now
            )
        return response

    # -- each record type's rules, defined by its own module -----------------------------------------
    def _apply_ticket(
        self, record: Record, fields: dict[str, Any], writable: dict[str, Any], request: Request, creating: bool
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _check_user(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        raise NotImplementedError

    def _check_organization(self, record: Record, writable: dict[str, Any], creating: bool) -> None:
        raise NotImplementedError
