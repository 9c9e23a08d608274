"""The error taxonomy: every failure is a structured value that says what, where, and what to do next.

The same value feeds the call log, the review queue, check metadata and alerts. Each vendor maps its
(status, error body) pairs to a category with a small table of `ErrorRule`s, the way Airbyte's response
actions do.

A retryable failure's rule may say "none: retried ..." (the client acts, not a person), but an error that is
raised has outlasted every retry: by then "none" is wrong. So a retryable error always carries what a person
does about it (`after_retries`): look at the vendor's status, and know when the next scheduled run will try.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH_EXPIRED = "auth_expired"
    AUTH_INVALID = "auth_invalid"
    PERMISSION_DENIED = "permission_denied"
    REJECTED_VALUE = "rejected_value"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SCHEMA_DRIFT = "schema_drift"
    UNKNOWN = "unknown"


RETRYABLE = frozenset({Category.TRANSIENT, Category.RATE_LIMITED})


class Severity(StrEnum):
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True)
class Resource:
    """What the failure touched."""

    system: str  # role: crm, billing, support
    endpoint: str = ""  # METHOD plus path template, never a concrete URL with personal data
    object_type: str | None = None
    record_id: str | None = None


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions as they travel
class IntegrationError(Exception):
    category: Category
    message: str
    resource: Resource
    next_action: str
    status: int | None = None
    vendor_code: str | None = None
    request_id: str | None = None
    severity: Severity = Severity.ERROR
    attempts: int = 1
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Interim attempts that succeed on retry are never shown; the one that is raised reaches a person.
        if self.retryable and self.next_action.startswith(RETRIED_BY_CLIENT):
            self.next_action = after_retries(self.category, self.next_action)

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE

    def __str__(self) -> str:
        where = f"{self.resource.system} {self.resource.endpoint}".strip()
        if self.resource.record_id:
            where += f" ({self.resource.object_type} {self.resource.record_id})"
        status = f" HTTP {self.status}" if self.status else ""
        code = f" [{self.vendor_code}]" if self.vendor_code else ""
        request = f" request {self.request_id}" if self.request_id else ""
        return (
            f"{self.category}{status}{code} at {where}: {self.message}. "
            f"Next action: {self.next_action}.{request} (attempts: {self.attempts})"
        )

    def as_record(self) -> dict[str, Any]:
        """Flat and JSON-ready, for tables, metadata and alerts."""
        record = asdict(self)
        record.update(record.pop("resource"))
        record["category"], record["severity"] = str(self.category), str(self.severity)
        record["retryable"] = self.retryable
        record["details"] = dict(self.details)
        return record


@dataclass(frozen=True)
class ErrorRule:
    """One line of a vendor's error table: when it matches, the failure is `category`.

    `next_action` may use `{scopes}`, `{param}` and the other `details` the vendor parser extracts.
    """

    category: Category
    next_action: str
    status: int | Sequence[int] | None = None
    code: str | Sequence[str] | None = None  # the vendor's own error code or category
    when: Callable[[Mapping[str, Any]], bool] | None = None
    severity: Severity = Severity.ERROR

    def matches(self, status: int, code: str | None, body: Mapping[str, Any]) -> bool:
        if self.status is not None and status not in _as_tuple(self.status):
            return False
        if self.code is not None and code not in _as_tuple(self.code):
            return False
        return self.when is None or self.when(body)


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else (value,)


RETRIED_BY_CLIENT = "none:"  # an action the client takes itself (pacing, retrying): nothing for a person yet
_MINUTELY_HOURLY = re.compile(r"^(\d{1,2}) \* \* \* \*$")  # "M * * * *": every hour at minute M


def next_scheduled_sync(now: datetime | None = None) -> str:
    """When the sync automation (`core.policies.SYNC_CRON`, UTC) next starts the sources, in words.

    An hourly cron gets its next start time; any other is named as it is written."""
    from integration_assets.core.policies import SYNC_CRON  # policies imports Dagster: not at import time

    hourly = _MINUTELY_HOURLY.match(SYNC_CRON)
    if hourly is None:
        return f"on the sync schedule `{SYNC_CRON}` (UTC)"
    minute = int(hourly.group(1))
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now.replace(minute=minute, second=0, microsecond=0)
    if start <= now:
        start += timedelta(hours=1)
    return f"at {start:%H:%M} UTC (hourly, `{SYNC_CRON}`)"


def after_retries(category: Category, hint: str = "", now: datetime | None = None) -> str:
    """What a person does about a retryable failure that outlasted every retry of the call and of the step.

    `hint` is the rule's own advice ("none: paced and retried; if it persists, lower the request budget"):
    its "none: ..." clause is dropped, any other clause kept. Nothing is to be fixed in this project when the
    vendor is down: the sources resume from their cursors, and writes wait in the outbox."""
    kept = [
        clause.strip()
        for clause in hint.split(";")
        if clause.strip() and not clause.strip().startswith(RETRIED_BY_CLIENT) and "status" not in clause
    ]
    if category == Category.RATE_LIMITED:
        first = "the vendor's rate limit outlasted every retry: check the vendor's status page and whether another "
        first += "client spends the same quota"
    else:
        first = "the vendor failed every retry: check the vendor's status page for an outage"
    then = (
        f"nothing to fix here once it is back: the next scheduled sync starts {next_scheduled_sync(now)} and "
        "resumes from the cursors (writes wait in ops.outbox), or run the job by hand then"
    )
    return "; ".join([first, *kept, then])


# What holds for every vendor unless its own table says otherwise.
COMMON_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(Category.RATE_LIMITED, "none: the call is paced and retried", status=429, severity=Severity.WARNING),
    ErrorRule(
        Category.TRANSIENT,
        "none: retried with backoff",
        status=(408, 500, 502, 503, 504),
        severity=Severity.WARNING,
    ),
    ErrorRule(Category.AUTH_INVALID, "check the credential in the environment", status=401),
    ErrorRule(Category.PERMISSION_DENIED, "grant the credential the permission", status=403),
    ErrorRule(Category.NOT_FOUND, "check that the record or path exists", status=404),
    ErrorRule(Category.CONFLICT, "re-read the record and decide again", status=409),
    ErrorRule(Category.REJECTED_VALUE, "fix the value named in the message", status=(400, 422)),
)


def classify(rules: Sequence[ErrorRule], status: int, code: str | None, body: Mapping[str, Any]) -> ErrorRule:
    for rule in (*rules, *COMMON_RULES):
        if rule.matches(status, code, body):
            return rule
    category = Category.TRANSIENT if status >= 500 else Category.UNKNOWN
    return ErrorRule(category, "look at the vendor's answer in the call log", severity=Severity.ERROR)
