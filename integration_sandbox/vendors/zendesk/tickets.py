"""Zendesk ticket writes: the comment that becomes the description, the requester, tags, and the audit."""

from __future__ import annotations

import time
from typing import Any

from integration_sandbox.kit import Request
from integration_sandbox.store import Record
from integration_sandbox.vendors.zendesk.definitions import TICKET_PRIORITIES, TICKET_STATUSES, TICKET_TYPES, iso
from integration_sandbox.vendors.zendesk.errors import problem, record_invalid
from integration_sandbox.vendors.zendesk.writes import Writes


class Tickets(Writes):
    def _apply_ticket(
        self,
        record: Record,
        fields: dict[str, Any],
        writable: dict[str, Any],
        request: Request,
        creating: bool,
    ) -> list[dict[str, Any]]:
        errors: dict[str, list[dict[str, str]]] = {}
        comment = fields.get("comment")
        body = None
        if isinstance(comment, dict):
            body = comment.get("body") or comment.get("html_body")
        elif isinstance(comment, str):
            body = comment
        if creating and not body and isinstance(fields.get("description"), str):
            body = fields["description"]
        if creating and not body:
            errors.update(problem("description", "Description: cannot be blank", "BlankValue"))
        if creating:
            requester_id = self._requester(fields, request, errors)
            if requester_id is not None:
                writable["requester_id"] = requester_id
                writable.setdefault("submitter_id", requester_id)
                if writable.get("organization_id") is None:
                    requester = self._collection("users").get(requester_id) or {}
                    inherited = requester.get("organization_id")  # none when that organization was deleted
                    live = inherited is not None and self._reachable("organizations", inherited) is not None
                    writable["organization_id"] = inherited if live else None
            writable.setdefault("status", "open" if writable.get("assignee_id") else "new")
            record["description"] = body
        elif "requester_id" in writable and self._collection("users").get(writable["requester_id"]) is None:
            errors.update(problem("requester_id", "Requester: is invalid", "InvalidValue"))
        if "status" in writable and writable["status"] not in TICKET_STATUSES:
            errors.update(problem("status", f"Status: {writable['status']} is not valid", "InvalidValue"))
        if writable.get("priority") is not None and writable["priority"] not in TICKET_PRIORITIES:
            errors.update(problem("priority", f"Priority: {writable['priority']} is not valid", "InvalidValue"))
        if writable.get("type") is not None and writable["type"] not in TICKET_TYPES:
            errors.update(problem("type", f"Type: {writable['type']} is not valid", "InvalidValue"))
        org = writable.get("organization_id")
        if org is not None and self._reachable("organizations", org) is None:
            errors.update(problem("organization_id", "Organization: is invalid", "InvalidValue"))
        tags = tags_after(fields, record, errors)
        if errors:
            raise record_invalid(errors)
        events = []
        for key, value in writable.items():
            if creating or record.get(key) != value:
                events.append({"type": "Create" if creating else "Change", "field_name": key, "value": value})
        record.update(writable)
        if "subject" in writable and "raw_subject" in record:
            record["raw_subject"] = writable["subject"]
        if creating and "via" in record:
            record["via"] = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
        if tags is not None:
            record["tags"] = tags
        if body:
            public = comment.get("public", True) if isinstance(comment, dict) else True
            events.append({"type": "Comment", "body": body, "public": public, "author_id": record["requester_id"]})
        return events

    def _requester(self, fields: dict[str, Any], request: Request, errors: dict) -> int | None:
        users = self._collection("users")
        requester_id = fields.get("requester_id")
        if requester_id is not None:
            if not isinstance(requester_id, int) or users.get(requester_id) is None:
                errors.update(problem("requester_id", "Requester: is invalid", "InvalidValue"))
                return None
            return requester_id
        requester = fields.get("requester")
        email = requester.get("email") if isinstance(requester, dict) else None
        if email is None:
            email = request.grant.email if request.grant else None  # the API user requests it, as in Zendesk
        for user in users:
            if email and str(user.get("email") or "").lower() == str(email).lower() and user.get("active") is not False:
                return user["id"]
        if isinstance(requester, dict) and email and "@" in str(email):
            now = time.time()
            user = self._template("users")
            user_id = self._next_id("users")
            user.update(
                id=user_id,
                url=self._url("users", user_id),
                name=requester.get("name") or str(email).split("@")[0],
                email=email,
                role="end-user",
                created_at=iso(now),
            )
            self.store("users", self._touched(user, now))
            return user_id
        errors.update(problem("requester", "Requester: cannot be blank", "BlankValue"))
        return None


def tags_after(fields: dict[str, Any], record: Record, errors: dict) -> list[str] | None:
    """The ticket's tags after `tags`, `additional_tags` and `remove_tags`; None when unchanged."""
    if not any(k in fields for k in ("tags", "additional_tags", "remove_tags")):
        return None
    tags = fields.get("tags", record.get("tags") or [])
    extra, removed = fields.get("additional_tags") or [], fields.get("remove_tags") or []
    if not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in (tags, extra, removed)):
        errors.update(problem("tags", "Tags: must be a list of strings", "InvalidValue"))
        return None
    merged = list(dict.fromkeys([*tags, *extra]))
    return [t for t in merged if t not in set(removed)]
