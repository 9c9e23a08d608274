"""ApiClient: one pooled `requests.Session` per vendor, with everything a production call needs.

Timeouts on every call; retries only for retryable failures, with capped exponential backoff and full
jitter, bounded in attempts and total time; `Retry-After` and the vendor's rate headers honoured; proactive
pacing; a scope guard that stops a call outside the access policy before it is sent; and a call log entry
for every attempt. Certificates are always verified: there is no switch to turn that off.

The scope guard judges the request, not its caller: the URL is built first (every path parameter
percent-encoded, one whole segment), then its method and path are looked up in the vendor's route table, and
the object type and operation found there are what the policy is asked about. A request that matches no route,
or whose caller declared something else than the route does, is refused before anything is sent. A base URL
must be `https` unless its host is this machine, as a token must not cross a network in clear.

The vendor's own shape (auth, error bodies, rate headers) comes from a `Vendor` in `systems/<role>/`.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from integration_assets.core.access import AccessPolicy, Operation, Route, RouteTable, unsafe_segment
from integration_assets.core.credentials import ConnectorCredentials
from integration_assets.core.errors import (
    Category,
    ErrorRule,
    IntegrationError,
    Resource,
    Severity,
    classify,
)
from integration_assets.core.pacing import Budget, RequestBudget
from integration_assets.core.redact import redact


class NestedTooDeep(ValueError):
    """An answer nested deeper than either JSON parser reads: the same bytes fail every time, so not retried."""


def _json(content: bytes) -> Any:
    """The answer's JSON. orjson refuses a whole page holding one escaped lone surrogate (`"\\ud800"`), which is
    valid JSON; Python's parser reads it, so the page lands and only that record is quarantined (its text
    cannot be stored). orjson also refuses nesting deeper than 1,024, where Python's parser runs out of stack:
    that raises NestedTooDeep. Anything else that is not JSON raises ValueError."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        try:
            return json.loads(content)
        except RecursionError:
            raise NestedTooDeep("the answer is nested deeper than the JSON parsers read") from None


# Headers that make some servers run another method than the one sent: a GET the route table allows could
# then act as a DELETE. Refused before sending, whatever their case.
METHOD_OVERRIDE_HEADERS = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 20.0
    max_total_s: float = 180.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 30.0


@dataclass(frozen=True)
class RateInfo:
    limit: int | None
    window_s: float | None
    remaining: int | None


class Credential(Protocol):
    """Puts the vendor's auth on a request; may refresh itself before it expires."""

    expires_at: float | None

    def headers(self) -> dict[str, str]: ...

    def refresh(self, session: requests.Session) -> bool:
        """Gets a fresh credential if it can (OAuth); False when only a person can."""
        ...

    def secrets(self) -> tuple[str, ...]: ...


class Vendor(Protocol):
    """What differs between vendors, for the client. Implemented in `systems/<role>/`."""

    system: str
    name: str
    request_id_header: str
    base_url_variable: str  # the setting its base URL comes from, named in a refusal
    routes: RouteTable  # its endpoints and what each does: the access policy is enforced on these
    error_rules: tuple[ErrorRule, ...]

    def parse_error(self, status: int, body: Any) -> tuple[str | None, str, dict[str, Any]]:
        """(vendor error code, message, details for the next action) from an error body."""
        ...

    def rate_info(self, headers: Mapping[str, str]) -> RateInfo | None: ...

    def should_retry(self, response: requests.Response) -> bool | None:
        """The vendor's explicit word on retrying (Stripe-Should-Retry), if it gave one."""
        ...


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as `ops.api_calls` stores it. Never a URL, a token or a body."""

    called_at: datetime
    run_id: str
    connector: str
    system: str
    method: str
    endpoint: str
    status: int | None
    latency_ms: float
    request_bytes: int
    response_bytes: int
    attempt: int
    error_category: str | None
    request_id: str | None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallLog:
    """Attempts in memory until the warehouse takes them; keeps the figures assets report."""

    records: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _latencies: list[float] = field(default_factory=list, repr=False)
    counts: dict[str, int] = field(default_factory=lambda: {"calls": 0, "failed": 0, "retries": 0, "429s": 0})

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)
            self._latencies.append(record.latency_ms)
            self.counts["calls"] += 1
            self.counts["failed"] += record.error_category is not None
            self.counts["retries"] += record.attempt > 1
            self.counts["429s"] += record.status == 429

    def drain(self) -> list[CallRecord]:
        with self._lock:
            drained, self.records = self.records, []
            return drained

    def summary(self) -> dict[str, float]:
        with self._lock:
            latencies = list(self._latencies)
        p50, p95 = latency_percentiles(latencies) or (0.0, 0.0)
        return {**self.counts, "latency_p50_ms": p50, "latency_p95_ms": p95}


def latency_percentiles(latencies: Iterable[float]) -> tuple[float, float] | None:
    """p50 and p95 in ms (inclusive quantiles, to 0.1 ms), None without a call: one way for every report."""
    values = sorted(latencies)
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1), round(values[0], 1)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[49], 1), round(cuts[94], 1)


LOOPBACK_HOSTS = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a request that never leaves this machine."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, variable: str) -> str:
    """The vendor base URL without its trailing slash; raises ValueError, naming `variable`, for one that would
    send a token in clear (`http` to another machine) or is not a plain `scheme://host[:port][/path]`."""
    value = url.strip() if isinstance(url, str) else ""
    accepted = "https://host[:port][/path] (http:// only for 127.0.0.1, ::1 or localhost)"
    shown = repr(value) if "@" not in value else "the value (it holds an '@': masked)"
    if value != url:
        raise ValueError(f"{variable}: the base URL has stray whitespace; expected {accepted}")
    try:
        parts = urlsplit(value)
        host, port = parts.hostname or "", parts.port
    except ValueError as error:
        raise ValueError(f"{variable}: {shown} is not a URL ({error}); expected {accepted}") from None
    del port  # parsed only to refuse a malformed one
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{variable}: {shown} is not a base URL; expected {accepted}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{variable}: the base URL must carry no credentials, query or fragment; expected {accepted}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"{variable}: {shown} uses http to {host}, which would send the credential in clear; use https "
            "(http is accepted only for 127.0.0.1, ::1 or localhost)"
        )
    return value.rstrip("/")


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Outgoing:
    """A request as prepared once, then sent once per attempt."""

    method: str
    url: str
    endpoint: str  # METHOD plus path template: what the call log keeps instead of the URL
    resource: Resource
    params: Any
    body: bytes | Any
    headers: Mapping[str, str]


class ApiClient:
    def __init__(
        self,
        vendor: Vendor,
        base_url: str,
        credential: Credential | ConnectorCredentials,
        *,
        connector: str,
        policy: AccessPolicy,
        budget: Budget | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        call_log: CallLog | None = None,
        run_id: str = "",
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(credential, ConnectorCredentials):
            credential = credential.for_connector(connector)
        self.vendor, self.credential, self.connector, self.policy = vendor, credential, connector, policy
        self.base_url = check_base_url(base_url, getattr(vendor, "base_url_variable", f"{vendor.name} base URL"))
        # No table, no requests: a vendor that does not say what its endpoints do cannot be policed.
        self.routes: RouteTable = getattr(vendor, "routes", None) or RouteTable(vendor.system, ())
        self.budget: Budget = budget or RequestBudget(None)
        self.retry, self.timeouts = retry, timeouts
        self.call_log = call_log if call_log is not None else CallLog()
        self.run_id = run_id
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = "integration_assets/0.1"
        # The environment (proxies, a CA bundle) is read once here, not again on every request: requests'
        # per-call look-ups cost a tenth of a page. Certificates stay verified either way.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False

    def close(self) -> None:
        self.session.close()

    # -- the one way to call a vendor ----------------------------------------------------------------
    def call(
        self,
        operation: Operation,
        object_type: str,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        url: str | None = None,
        params: Any = None,
        json_body: Any = None,
        form: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        record_id: str | None = None,
    ) -> ApiResponse:
        """Sends `method template` (or a `url` the vendor gave, on the same host) and returns the JSON.

        `operation` and `object_type` are the caller's expectation, checked against the route the request
        matches; the policy is asked about the route's. `idempotent` says whether a retry after a lost response
        is safe; by default reads are, writes not.
        """
        method = method.upper()
        declared = Resource(self.vendor.system, f"{method} {template}", object_type, record_id)
        overriding = sorted(name for name in (headers or {}) if str(name).strip().lower() in METHOD_OVERRIDE_HEADERS)
        if overriding:
            raise IntegrationError(
                category=Category.PERMISSION_DENIED,
                message=f"the header {overriding[0]} would change the method the route table judged: blocked "
                "before sending",
                resource=declared,
                next_action="send the method the request means: the route decides what a request does",
            )
        target = self._target(template, path_params, url, declared)
        route = self._route(method, target, operation, object_type, declared)
        endpoint = f"{method} {route.template}"
        resource = Resource(self.vendor.system, endpoint, route.object_type, record_id)
        self.policy.check(self.connector, self.vendor.system, route.object_type, route.operation, endpoint)
        operation = route.operation
        request = _Outgoing(
            method=method,
            url=target,
            endpoint=endpoint,
            resource=resource,
            params=params,
            body=json.dumps(json_body).encode() if json_body is not None else form,
            headers={**({"Content-Type": "application/json"} if json_body is not None else {}), **(headers or {})},
        )
        safe_to_repeat = operation == Operation.READ if idempotent is None else idempotent
        started, attempt, refreshed = time.monotonic(), 0, False
        while True:
            attempt += 1
            outcome = self._attempt(request, attempt)
            if isinstance(outcome, ApiResponse):
                return outcome
            error, response = outcome
            if error.category == Category.AUTH_EXPIRED and not refreshed and self.credential.refresh(self.session):
                refreshed = True
                continue
            verdict = self.vendor.should_retry(response) if response is not None else None
            retryable = error.retryable if verdict is None else verdict
            # A 429 was refused before any work was done: repeating it is safe even for a write.
            repeatable = safe_to_repeat or error.category == Category.RATE_LIMITED or verdict is True
            if repeatable and self._may_retry(attempt, started, retryable):
                wait = self._wait_before_retry(response, attempt)
                if wait is not None:
                    self._sleep(wait)
                    continue
                error.next_action = (
                    f"the vendor asked to wait {response.headers.get('Retry-After')} s before the next call; "
                    "run again after that (or raise max_retry_after_s)"
                )
            raise error

    def _attempt(
        self, request: _Outgoing, attempt: int
    ) -> ApiResponse | tuple[IntegrationError, requests.Response | None]:
        """One HTTP exchange, logged: the answer, or the structured failure and the response if any."""
        self.budget.acquire()
        sent_at, clock = datetime.now(UTC), time.perf_counter()
        response: requests.Response | None = None
        try:
            self._refresh_if_due()  # inside: a token endpoint that times out is a transient failure too
            response = self.session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.body,
                headers={**self.credential.headers(), **request.headers},
                timeout=(self.timeouts.connect_s, self.timeouts.read_s),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            outcome: ApiResponse | tuple[IntegrationError, requests.Response | None] = (
                self._transport_error(exc, request.resource, attempt),
                None,
            )
        else:
            self._observe_rate(response)
            outcome = self._read(response, request.resource, attempt)
        error = outcome[0] if isinstance(outcome, tuple) else None
        self.call_log.add(
            CallRecord(
                called_at=sent_at,
                run_id=self.run_id,
                connector=self.connector,
                system=self.vendor.system,
                method=request.method,
                endpoint=request.endpoint.split(" ", 1)[1],
                status=response.status_code if response is not None else None,
                latency_ms=round((time.perf_counter() - clock) * 1000, 2),
                request_bytes=len(request.body) if isinstance(request.body, (bytes, str)) else 0,
                response_bytes=len(response.content) if response is not None else 0,
                attempt=attempt,
                error_category=str(error.category) if error else None,
                request_id=response.headers.get(self.vendor.request_id_header) if response is not None else None,
            )
        )
        return outcome

    def _read(
        self, response: requests.Response, resource: Resource, attempt: int
    ) -> ApiResponse | tuple[IntegrationError, requests.Response]:
        request_id = response.headers.get(self.vendor.request_id_header)
        if response.status_code >= 300:
            return self._vendor_error(response, resource, attempt, request_id), response
        try:
            body = _json(response.content) if response.content else None
        except NestedTooDeep:
            too_deep = IntegrationError(
                category=Category.SCHEMA_DRIFT,
                message=f"the answer is nested deeper than the JSON parsers read ({len(response.content)} bytes)",
                resource=resource,
                next_action="the same answer fails every time: report it to the vendor with the request id; the "
                "stream stops here until the vendor's answer changes",
                status=response.status_code,
                request_id=request_id,
                attempts=attempt,
            )
            return too_deep, response
        except ValueError:
            malformed = IntegrationError(
                category=Category.TRANSIENT,
                message=f"the answer is not valid JSON ({len(response.content)} bytes)",
                resource=resource,
                next_action="none: retried; if it persists, look at the vendor's status page",
                status=response.status_code,
                request_id=request_id,
                severity=Severity.WARNING,
                attempts=attempt,
            )
            return malformed, response
        return ApiResponse(response.status_code, body, response.headers)

    # -- the pieces ------------------------------------------------------------------------------------
    def _target(self, template: str, path_params: Mapping[str, Any] | None, url: str | None, resource: Resource) -> str:
        """The URL to send: the template with each path parameter percent-encoded into one segment."""
        if url is None:
            encoded: dict[str, str] = {}
            for name, value in (path_params or {}).items():
                text = str(value)
                if not text or unsafe_segment(text):
                    raise IntegrationError(
                        category=Category.PERMISSION_DENIED,
                        message=f"path parameter {name}={text[:80]!r} is not an identifier: blocked before sending",
                        resource=resource,
                        next_action="look at the record this value came from: an id never holds '/', '..' or "
                        "control characters",
                    )
                encoded[name] = quote(text, safe="")
            return self.base_url + template.format(**encoded)
        given, base = urlsplit(url), urlsplit(self.base_url)
        if (given.scheme, given.netloc) != (base.scheme, base.netloc):
            raise IntegrationError(
                category=Category.PERMISSION_DENIED,
                message=f"the vendor pointed at another host ({given.netloc}); not followed",
                resource=resource,
                next_action="check the base URL setting; pagination links must stay on the vendor's host",
            )
        return url

    def _route(self, method: str, target: str, operation: Operation, object_type: str, declared: Resource) -> Route:
        """The route the request matches, by the path it will really have; refused when there is none, or when
        the caller expected something else (a PATCH declared a read, a contact path declared a deal)."""
        path, base_path = urlsplit(target).path, urlsplit(self.base_url).path
        route = self.routes.match(method, path[len(base_path) :]) if path.startswith(base_path + "/") else None
        if route is None:
            raise IntegrationError(
                category=Category.PERMISSION_DENIED,
                message=f"{method} {declared.endpoint.split(' ', 1)[1]} matches no {self.vendor.name} route: "
                "blocked before sending",
                resource=declared,
                next_action=f"add the endpoint, with what it does, to systems/{self.vendor.system}/routes.py if "
                "the vendor really has it",
            )
        if (route.operation, route.object_type) != (Operation(operation), object_type):
            raise IntegrationError(
                category=Category.PERMISSION_DENIED,
                message=f"{method} {route.template} does {route.operation} {route.object_type}, but the caller "
                f"declared {operation} {object_type}: blocked before sending",
                resource=Resource(self.vendor.system, f"{method} {route.template}", route.object_type),
                next_action="fix the caller: the route decides what a request does",
            )
        return route

    def _refresh_if_due(self) -> None:
        expires_at = self.credential.expires_at
        if expires_at is not None and expires_at - time.time() < 60:
            self.credential.refresh(self.session)

    def _may_retry(self, attempt: int, started: float, retryable: bool) -> bool:
        """Within the bounds of attempts and total time, for a failure that may be retried."""
        return retryable and attempt < self.retry.max_attempts and time.monotonic() - started < self.retry.max_total_s

    def _wait_before_retry(self, response: requests.Response | None, attempt: int) -> float | None:
        """Seconds to wait: the vendor's Retry-After if sane, else backoff. None: give up."""
        backoff = self.retry.backoff(attempt, self._rng)
        retry_after = _retry_after_s(response.headers.get("Retry-After")) if response is not None else None
        if retry_after is None:
            if response is not None and response.status_code == 429:
                self.budget.hold(backoff)
            return backoff
        if retry_after > self.retry.max_retry_after_s:
            return None  # an absurd wait: fail now and say so, rather than hang the run
        wait = max(retry_after, 0.0) + self._rng.uniform(0, 0.25)
        self.budget.hold(wait)
        return wait

    def _observe_rate(self, response: requests.Response) -> None:
        info = self.vendor.rate_info(response.headers)
        if info is not None:
            self.budget.observe(info.limit, info.window_s, info.remaining)

    def _vendor_error(
        self, response: requests.Response, resource: Resource, attempt: int, request_id: str | None
    ) -> IntegrationError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        code, message, details = self.vendor.parse_error(response.status_code, body)
        rule = classify(self.vendor.error_rules, response.status_code, code, body if isinstance(body, dict) else {})
        secrets = self.credential.secrets()
        return IntegrationError(
            category=rule.category,
            message=redact(message or response.reason or "no message", secrets),
            resource=resource,
            next_action=redact(_fill(rule.next_action, details), secrets),
            status=response.status_code,
            vendor_code=code,
            request_id=request_id,
            severity=rule.severity,
            attempts=attempt,
            details={k: redact(str(v), secrets) for k, v in details.items()},
        )

    def _transport_error(self, exc: requests.RequestException, resource: Resource, attempt: int) -> IntegrationError:
        if isinstance(exc, requests.exceptions.SSLError):
            return IntegrationError(
                category=Category.AUTH_INVALID,
                message="the server's TLS certificate did not verify",
                resource=resource,
                next_action="fix the certificate or the base URL; verification is never turned off",
                attempts=attempt,
                severity=Severity.CRITICAL,
            )
        kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed or was reset"
        return IntegrationError(
            category=Category.TRANSIENT,
            message=f"the request {kind} ({type(exc).__name__})",
            resource=resource,
            next_action="none: retried with backoff; if it persists, check the vendor's status",
            attempts=attempt,
            severity=Severity.WARNING,
        )


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC without saying so
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return seconds if math.isfinite(seconds) else None


def _fill(template: str, details: Mapping[str, Any]) -> str:
    try:
        return template.format(**details)
    except (KeyError, IndexError):
        return template
