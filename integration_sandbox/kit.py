"""What an imitated vendor is built from: requests, responses, routes and the `VendorApp` base class.

Vendors import this module and never the server, so the server can import every vendor without a cycle.
An app reaches the server that runs it only through `Host`: its vendor's current fault settings.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote, unquote_plus

from integration_sandbox.auth import CredentialBook, Grant
from integration_sandbox.faults import VendorSettings, apply_drift
from integration_sandbox.ratelimit import Verdict
from integration_sandbox.store import Collection, Record

JSON_TYPE = "application/json; charset=utf-8"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def parse_query(query: str) -> dict[str, list[str]]:
    """`parse_qs(query, keep_blank_values=True)`, but decoding only what is encoded (a fifth of a page)."""
    params: dict[str, list[str]] = {}
    for pair in query.split("&") if query else ():
        if pair:
            name, _, value = pair.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name)
            if "%" in value or "+" in value:
                value = unquote_plus(value)
            params.setdefault(name, []).append(value)
    return params


def parse_iso(text: str) -> datetime | None:
    """An ISO-8601 timestamp or date, in UTC when it names no zone; None when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # bytes are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else dumps(self.body)


class VendorError(Exception):
    """Raised by a handler to answer with the vendor's own error response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = Response(status, body, headers or {})


class Headers(dict):
    """Request headers, looked up without regard to case."""

    def __setitem__(self, name: str, value: str) -> None:
        super().__setitem__(name.strip().lower(), value)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    grant: Grant | None = None
    request_id: str = ""
    base_url: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return _NOT_JSON


_NOT_JSON = object()


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Callable[[Request], Response]
    scope: str | None = None  # the permission the vendor requires; checked by the app's `authenticate`
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def writes(self) -> bool:
        return self.method != "GET"


class Host(Protocol):
    """What an app asks of the server that runs it."""

    def settings(self, vendor: str) -> VendorSettings: ...


class VendorApp:
    """One imitated vendor. Subclasses provide routes, auth, error bodies and the records' order."""

    vendor: ClassVar[str]
    object_types: ClassVar[tuple[str, ...]]
    request_id_header: ClassVar[str]

    def __init__(self, dataset_dir: Path | None, sandbox: Host) -> None:
        self.sandbox = sandbox
        self.lock = threading.RLock()
        self.collections: dict[str, Collection] = {}
        for object_type in self.object_types:
            self.collections[object_type] = self.make_collection(object_type, self.load(dataset_dir, object_type))
        self.credentials = CredentialBook(self.default_grants())
        self.routes = self.build_routes()
        self.base_url = ""

    # -- what each vendor defines ------------------------------------------------------------------
    def build_routes(self) -> list[Route]:
        raise NotImplementedError

    def order_key(self, object_type: str) -> Callable[[Record], Any]:
        raise NotImplementedError

    def make_collection(self, object_type: str, records: list[Record]) -> Collection:
        """The store of one object type; a vendor that needs more indexes returns a subclass."""
        return Collection(object_type, records, order_key=self.order_key(object_type))

    def default_grants(self) -> list[Grant]:
        raise NotImplementedError

    def authenticate(self, request: Request, route: Route) -> Grant:
        """Returns the caller's grant or raises the vendor's 401/403."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """The vendor's own body for a status code, used for injected faults and unknown paths."""
        raise NotImplementedError

    def rate_limited(self, verdict: Verdict) -> Response:
        raise NotImplementedError

    def rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {}

    def new_request_id(self) -> str:
        return uuid.uuid4().hex

    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        """A copy of `record` edited as a user of the vendor would, with its change time bumped."""
        raise NotImplementedError

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        """Deletes as the vendor does (archive, tombstone); returns the record as it stays, if it does."""
        raise NotImplementedError

    def coerce_id(self, object_type: str, raw: str) -> Any:
        return raw

    # -- shared behaviour ----------------------------------------------------------------------------
    def load(self, dataset_dir: Path | None, object_type: str) -> list[Record]:
        """The dataset's records of one type (`<vendor>/<type>.json`); none without a dataset or file."""
        path = dataset_dir / self.vendor / f"{object_type}.json" if dataset_dir else None
        return json.loads(path.read_text()) if path and path.exists() else []

    @property
    def settings(self) -> VendorSettings:
        return self.sandbox.settings(self.vendor)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if route.method == method:
                found = route.pattern.match(path)
                if found:
                    return route, {name: unquote(value) for name, value in found.groupdict().items()}
        return None, {}

    def render(self, object_type: str, record: Record, view: Any = None, shape=None) -> bytes:
        """A record as served: shaped for the request's view, then drifted if the profile says so."""
        drift = self.settings.drift.get(object_type)

        def to_bytes(rec: Record) -> bytes:
            shaped = shape(rec) if shape else rec
            return dumps(apply_drift(shaped, drift) if drift else shaped)

        return self.collections[object_type].render(record, view, to_bytes)

    def render_list(self, object_type: str, records: list[Record], view: Any = None, shape=None) -> bytes:
        return b"[" + b",".join(self.render(object_type, r, view, shape) for r in records) + b"]"

    def store(self, object_type: str, record: Record) -> None:
        self.collections[object_type].put(record)
