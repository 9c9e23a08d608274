"""Zendesk's object types, limits, fields and timestamps, and which records its plain lists show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from integration_sandbox.kit import parse_iso
from integration_sandbox.store import Record

TYPES = ("organizations", "users", "tickets")
SINGULAR = {"organizations": "organization", "users": "user", "tickets": "ticket"}
MAX_PAGE_SIZE = 100
MAX_EXPORT_PAGE = 1000
OFFSET_LIMIT = 10_000
NOMINAL_RATE_LIMIT = 700  # requests per minute of the Enterprise plan, reported when no limit is configured

TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PRIORITIES = ("urgent", "high", "normal", "low")
TICKET_TYPES = ("problem", "incident", "question", "task")
USER_ROLES = ("end-user", "agent", "admin")

# Fields a record always has, whatever the dataset's shape; new records start from these.
BASE_FIELDS: dict[str, dict[str, Any]] = {
    "tickets": {
        "id": None, "url": None, "external_id": None, "type": None, "subject": None, "description": None,
        "priority": None, "status": "new", "requester_id": None, "submitter_id": None, "assignee_id": None,
        "organization_id": None, "group_id": None, "tags": [], "custom_fields": [], "due_at": None,
        "created_at": None, "updated_at": None, "generated_timestamp": None,
    },
    "users": {
        "id": None, "url": None, "name": None, "email": None, "phone": None, "role": "end-user",
        "organization_id": None, "external_id": None, "tags": [], "user_fields": {}, "active": True,
        "verified": False, "suspended": False, "time_zone": "UTC", "locale": "en-US", "created_at": None,
        "updated_at": None, "generated_timestamp": None,
    },
    "organizations": {
        "id": None, "url": None, "name": None, "domain_names": [], "external_id": None, "details": None,
        "notes": None, "group_id": None, "shared_tickets": False, "shared_comments": False, "tags": [],
        "organization_fields": {}, "created_at": None, "updated_at": None, "generated_timestamp": None,
    },
}  # fmt: skip
READ_ONLY = {"id", "url", "created_at", "updated_at", "generated_timestamp", "active", "description"}
READ_ONLY |= {"raw_subject", "via"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: Any) -> int | None:
    """Unix seconds of an ISO-8601 timestamp, or None when it is not one."""
    moment = parse_iso(text) if isinstance(text, str) else None
    return None if moment is None else int(moment.timestamp())


def listed(object_type: str) -> Callable[[Record], bool]:
    """Whether a record shows in the plain lists and counts: deleted tickets, deleted (inactive) users and
    deleted organizations (tombstones with `deleted_at`) do not."""
    if object_type == "tickets":
        return lambda r: r.get("status") != "deleted"
    if object_type == "users":
        return lambda r: r.get("active") is not False
    return lambda r: not r.get("deleted_at")


def reachable(object_type: str) -> Callable[[Record], bool]:
    """Whether show, show_many, update and delete find a record: a deleted user still answers (inactive), a
    deleted ticket or organization is 404 and lives on only in the incremental export."""
    return (lambda r: True) if object_type == "users" else listed(object_type)
