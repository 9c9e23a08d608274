"""The Zendesk app: its endpoints composed, its routes, and how a Zendesk user edits and deletes records."""

from __future__ import annotations

import copy
from typing import Any

from integration_sandbox.kit import Route
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import TICKET_PRIORITIES, TICKET_STATUSES, TYPES, iso
from integration_sandbox.vendors.zendesk.incremental import Exports
from integration_sandbox.vendors.zendesk.organizations import Organizations
from integration_sandbox.vendors.zendesk.pagination import Lists
from integration_sandbox.vendors.zendesk.tickets import Tickets
from integration_sandbox.vendors.zendesk.users import Users


class ZendeskApp(Lists, Exports, Tickets, Users, Organizations):
    """Zendesk: one mixin per family of endpoints, all over `ZendeskCore`, which holds the state they share."""

    vendor = "zendesk"
    object_types = TYPES
    request_id_header = "X-Zendesk-Request-Id"

    def build_routes(self) -> list[Route]:
        routes = [self._route("GET", "/api/v2/users/me", self._me, None)]
        for object_type in TYPES:
            base, export = f"/api/v2/{object_type}", f"/api/v2/incremental/{object_type}"
            read, write = f"{object_type}:read", f"{object_type}:write"
            table = [
                ("GET", export, self._export_by_time, read),
                ("GET", base, self._list, read),
                ("GET", f"{base}/show_many", self._show_many, read),
                ("GET", f"{base}/count", self._count, read),
                ("GET", f"{base}/{{id}}", self._show, read),
                ("POST", base, self._create, write),
                ("PUT", f"{base}/{{id}}", self._update, write),
                ("DELETE", f"{base}/{{id}}", self._destroy, write),
            ]
            if object_type != "tickets":
                table.append(("POST", f"{base}/create_or_update", self._create_or_update, write))
            if object_type != "organizations":  # Zendesk has cursor exports for tickets and users only
                table.append(("GET", f"{export}/cursor", self._export_by_cursor, read))
            routes += [self._route(m, t, h, s, object_type) for m, t, h, s in table]
        return routes

    # -- changes over time ------------------------------------------------------------------------------
    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        edited = copy.deepcopy(record)
        if object_type == "tickets":
            if edited.get("status") not in ("deleted", "closed"):  # closed tickets only take system tags
                edited["status"] = rng.choice([s for s in TICKET_STATUSES[1:5] if s != edited.get("status")])
                edited["priority"] = rng.choice(TICKET_PRIORITIES)
            edited["tags"] = sorted({*(edited.get("tags") or []), rng.choice(["vip", "follow_up", "billing"])})
        elif object_type == "users":
            edited["phone"] = f"+1 555 {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"
            if rng.random() < 0.5 and edited.get("name"):
                edited["name"] = edited["name"].strip() + " Jr."
        else:
            edited["notes"] = f"Reviewed {iso(now)[:10]}: account {rng.choice(['healthy', 'at risk', 'expanding'])}"
            fields = dict(edited.get("organization_fields") or {})
            fields["health"] = rng.choice(["green", "yellow", "red"])
            edited["organization_fields"] = fields
        return self._touched(edited, now)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        collection = self.collections[object_type]
        record = collection.get(record_id)
        if record is None:
            return None
        if object_type == "organizations":
            if record.get("deleted_at"):  # deleted once: the tombstone keeps its deletion time
                return record
            gone = self._tombstone(record, now)
        elif object_type == "tickets":
            gone = self._touched(dict(record, status="deleted"), now)
        else:
            gone = self._touched(dict(record, active=False), now)
        collection.put(gone)
        return gone
