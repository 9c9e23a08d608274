"""Stripe's idempotency keys: the first result replayed, other parameters refused, a key in use answered 409.

A key is claimed as its request authenticates, before the request queues for the app lock, so a second request
with the same key is refused while the first still waits or runs.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from integration_sandbox.auth import Grant
from integration_sandbox.kit import Request, Response, VendorError
from integration_sandbox.vendors.stripe.errors import Invalid, stripe_error

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 86_400  # keys may be pruned after 24 h
MAX_IDEMPOTENCY_KEY = 255


@dataclass
class _Idempotent:
    """One key's state: in flight (status None) or the saved first result."""

    fingerprint: tuple[Any, ...]
    owner: str  # request id of the request that ran (or runs) the endpoint
    thread: int
    created: float
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _fingerprint(request: Request) -> tuple[Any, ...]:
    pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    pairs += [(k, v) for k, values in request.query.items() for v in values]
    return (request.method, request.path, tuple(sorted(pairs)))


class IdempotencyKeys:
    """One app's keys, by (key, API key): in flight, or with the first result saved."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Idempotent] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str, grant: Grant, request: Request) -> None:
        """Marks the key in flight before the request queues for the app lock; a second user gets 409."""
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise stripe_error(
                400,
                f"Invalid idempotency key: keys can be at most {MAX_IDEMPOTENCY_KEY} characters long, "
                f"but you passed one of {len(key)} characters.",
                param="Idempotency-Key",
            )
        now, thread = self._clock(), threading.get_ident()
        with self._lock:
            self.release_thread(locked=True)
            self._prune(now)
            ident = (key, grant.token)
            entry = self._entries.get(ident)
            if entry is None:
                self._entries[ident] = _Idempotent(_fingerprint(request), request.request_id, thread, now)
            elif entry.status is None and entry.owner != request.request_id:
                raise stripe_error(
                    409,
                    "There is currently another in-progress request using this Idempotent Key (that probably "
                    f"means you submitted twice, and the other request is still going through): {key}. "
                    "Please try again later.",
                    code="idempotency_key_in_use",
                )

    def release_thread(self, locked: bool = False) -> None:
        """Drops in-flight claims of earlier requests on this connection that never reached their endpoint."""
        thread = threading.get_ident()
        if not locked:
            with self._lock:
                self.release_thread(locked=True)
            return
        stale = [k for k, e in self._entries.items() if e.status is None and e.thread == thread]
        for ident in stale:
            del self._entries[ident]

    def _prune(self, now: float) -> None:
        while self._entries:
            ident, entry = next(iter(self._entries.items()))
            if entry.created > now - IDEMPOTENCY_TTL_S:
                break
            del self._entries[ident]

    def in_flight(self) -> list[str]:
        with self._lock:
            return [key for (key, _), e in self._entries.items() if e.status is None]

    def wrap(self, endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Runs a POST endpoint once per idempotency key; replays its first result to later requests."""

        def run(request: Request) -> Response:
            key = request.header("Idempotency-Key")
            if not key:
                return _execute(endpoint, request)[0]
            ident = (key, request.grant.token if request.grant else "")
            with self._lock:
                entry = self._entries.get(ident)
                if entry is None:  # pruned while queued: claim it now
                    entry = _Idempotent(_fingerprint(request), request.request_id, threading.get_ident(), self._clock())
                    self._entries[ident] = entry
            if entry.status is not None or entry.owner != request.request_id:
                return _replay(entry, key, request)
            try:
                response, save = _execute(endpoint, request)
                response.headers["Idempotency-Key"] = key
                with self._lock:
                    if save:
                        entry.status, entry.body = response.status, response.payload()
                        entry.headers = {k: v for k, v in response.headers.items() if k != "Content-Type"}
                    else:
                        self._entries.pop(ident, None)
                return response
            finally:
                with self._lock:
                    if entry.status is None and self._entries.get(ident) is entry:
                        del self._entries[ident]

        return run


def _replay(entry: _Idempotent, key: str, request: Request) -> Response:
    if entry.fingerprint != _fingerprint(request):
        raise stripe_error(
            400,
            "Keys for idempotent requests can only be used with the same parameters they were first used "
            f"with. Try using a key other than '{key}' if you meant to execute a different request.",
            kind="idempotency_error",
        )
    if entry.status is None:  # cannot happen under the app lock, kept for safety
        raise stripe_error(409, f"Idempotent request in progress: {key}", code="idempotency_key_in_use")
    headers = {**entry.headers, "Idempotent-Replayed": "true", "Original-Request": entry.owner}
    return Response(entry.status, entry.body, headers)


def _execute(endpoint: Callable[[Request], Response], request: Request) -> tuple[Response, bool]:
    """The endpoint's response and whether it is saved for the key (not when parameters failed)."""
    try:
        return endpoint(request), True
    except Invalid as error:
        return error.response, False
    except VendorError as error:
        return error.response, True
    except Exception:
        log.exception("stripe sandbox endpoint %s %s failed", request.method, request.path)
        body = {"error": {"message": "An unknown error occurred", "type": "api_error"}}
        return Response(500, body, {"Stripe-Should-Retry": "false"}), True
