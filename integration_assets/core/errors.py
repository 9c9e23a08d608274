"""The error taxonomy: every failure is a structured value that says what, where, and what to do next.

The same value feeds the call log, the review queue, check metadata and alerts. Each vendor maps its
(status, error body) pairs to a category with a small table of `ErrorRule`s, the way Airbyte's response
actions do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
