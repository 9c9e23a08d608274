"""Serves the imitated vendors over HTTP, each on its own loopback port, with the fault profile applied.

Faults, auth and rate limits are decided here, per request, before a vendor's handler runs; faults come from
the profile's seed, so a sequential client sees the same sequence every time. The `/__sandbox__/` routes let
tests and operators inspect records, change them over time and swap the profile while serving.
"""

from __future__ import annotations

import contextlib
import gc
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from integration_assets.core.config import ConfigError
from integration_sandbox.faults import (
    VENDORS,
    Decision,
    FaultDice,
    FaultProfile,
    RouteBlock,
    VendorSettings,
    parse_profile,
)
from integration_sandbox.kit import JSON_TYPE, Headers, Request, Response, VendorApp, VendorError, dumps, parse_query
from integration_sandbox.ratelimit import RollingWindow, Verdict
from integration_sandbox.vendors import VENDOR_APPS


class Sandbox:
    """The three vendors and the state they share: fault profile, dice, limiters, stats."""

    def __init__(
        self,
        dataset_dir: str | Path | None,
        profile: FaultProfile | None = None,
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        apps: dict[str, type[VendorApp]] | None = None,
    ) -> None:
        apps = VENDOR_APPS if apps is None else apps
        self.host = host
        self.ports = {"hubspot": 8701, "stripe": 8702, "zendesk": 8703, **(ports or {})}
        self._lock = threading.Lock()
        self.stats: dict[str, Counter[str]] = {v: Counter() for v in VENDORS}
        self._profile = profile or FaultProfile()
        self._apply(self._profile, first=True)
        directory = Path(dataset_dir) if dataset_dir else None
        self.apps = {name: cls(directory, self) for name, cls in apps.items()}
        for app in self.apps.values():
            app.credentials.reset(self.settings(app.vendor))
        gc.freeze()  # the dataset lives as long as the server: keep the collector from walking it again
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []

    # -- profile ------------------------------------------------------------------------------------
    @property
    def profile(self) -> FaultProfile:
        return self._profile

    def settings(self, vendor: str) -> VendorSettings:
        return self._settings[vendor]

    def set_profile(self, profile: FaultProfile) -> None:
        self._apply(profile, first=False)

    def _apply(self, profile: FaultProfile, first: bool) -> None:
        with self._lock:
            self._profile = profile
            self._settings = {v: profile.for_vendor(v) for v in VENDORS}
            self._dice = {v: FaultDice(profile.seed, v) for v in VENDORS}
            self._limiters: dict[tuple[str, str], RollingWindow] = {}
        if not first:
            for app in self.apps.values():
                app.credentials.reset(self._settings[app.vendor])
                for collection in app.collections.values():
                    collection.forget_rendered()

    def limiter(self, vendor: str, scope: str, rule) -> RollingWindow:
        key = (vendor, scope)
        with self._lock:
            window = self._limiters.get(key)
            if window is None:
                window = self._limiters[key] = RollingWindow(rule.requests, rule.per_seconds)
            return window

    def roll(self, vendor: str, route_block: RouteBlock | None, writes: bool) -> Decision:
        return self._dice[vendor].roll(self._settings[vendor], route_block, writes)

    # -- serving ------------------------------------------------------------------------------------
    def url(self, vendor: str) -> str:
        return f"http://{self.host}:{self.ports[vendor]}"

    def start(self) -> Sandbox:
        for vendor, app in self.apps.items():
            server = _Server((self.host, self.ports[vendor]), _handler_for(self, app))
            self.ports[vendor] = server.server_address[1]
            app.base_url = self.url(vendor)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        stopping = [threading.Thread(target=server.shutdown) for server in self._servers]
        for thread in stopping:
            thread.start()
        for thread, server in zip(stopping, self._servers, strict=True):
            thread.join()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


_CALM = Decision()


class _Reset(Exception):
    """Ends the connection with a TCP reset and no response."""


def _handler_for(sandbox: Sandbox, app: VendorApp) -> type[BaseHTTPRequestHandler]:
    return type(f"{app.vendor.title()}Handler", (_Handler,), {"sandbox": sandbox, "app": app})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sandbox: ClassVar[Sandbox]
    app: ClassVar[VendorApp]

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY each keep-alive response waits for a delayed ACK (30x slower).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except _Reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (ConnectionError, TimeoutError):
            pass

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the client may be gone already
            super().finish()

    def handle_one_request(self) -> None:
        """HTTP/1.1 request parsing without the stdlib's email parser, which costs a third of the time."""
        line = self.rfile.readline(65537)
        if not line:
            self.close_connection = True
            return
        self.raw_requestline = line
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self.close_connection = True
            return
        self.command, self.path, self.request_version = parts
        headers = Headers()
        while True:
            field = self.rfile.readline(65537)
            if field in (b"\r\n", b"\n", b""):
                break
            name, _, value = field.decode("latin-1").partition(":")
            headers[name] = value.strip()
        self.headers = headers
        connection = (headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_query(parts.query),
            headers=self.headers,
            body=body,
            base_url=self.app.base_url,
        )
        if request.path.startswith("/__sandbox__/"):
            response = _inspection(self.sandbox, self.app, request)
        else:
            response = _dispatch(self.sandbox, self.app, request)
        self._send(response)

    def _send(self, response: Response | None) -> None:
        if response is None:
            raise _Reset
        payload = response.payload()
        status = HTTPStatus(response.status)
        head = [f"HTTP/1.1 {status.value} {status.phrase}", f"Content-Length: {len(payload)}"]
        if payload:
            head.append(f"Content-Type: {response.headers.pop('Content-Type', JSON_TYPE)}")
        head.extend(f"{name}: {value}" for name, value in response.headers.items())
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)


def _dispatch(sandbox: Sandbox, app: VendorApp, request: Request) -> Response | None:
    """Serves one vendor request: faults, auth, rate limit, handler. None means: reset the connection."""
    vendor, stats = app.vendor, sandbox.stats[app.vendor]
    stats["requests"] += 1
    request.request_id = app.new_request_id()
    route, request.params = app.match(request.method, request.path)
    settings = app.settings
    block = None
    if route is not None:
        block = settings.routes.get(f"{request.method} {request.path}") or settings.routes.get(
            f"{request.method} {route.template}"
        )
    decision = sandbox.roll(vendor, block, writes=request.method != "GET") if settings.injects or block else _CALM
    if decision.latency_s:
        time.sleep(decision.latency_s)
    if decision.fault:
        stats[f"fault:{decision.fault}"] += 1
    if decision.fault == "reset":
        return None
    if decision.fault == "timeout":
        time.sleep(settings.timeout_hold_s)
    if decision.fault in ("429", "500", "502", "503"):
        status = int(decision.fault)
        rule = settings.rate_limit
        full = Verdict(False, rule.requests if rule else 0, 0, rule.per_seconds if rule else 1.0, 1.0)
        response = app.rate_limited(full) if status == 429 else app.error(status, "injected fault")
        return _finish(stats, app, request, response)
    try:
        if route is None:
            return _finish(stats, app, request, app.error(404, f"no route {request.method} {request.path}"))
        request.grant = app.authenticate(request, route)
        rule = block.rate_limit if block and block.rate_limit else settings.rate_limit
        if rule is not None:
            scope = f"route:{route.template}" if block and block.rate_limit else "token"
            verdict = sandbox.limiter(vendor, f"{scope}:{request.grant.token}", rule).hit(request.grant.token)
            if not verdict.allowed:
                stats["rate_limited"] += 1
                return _finish(stats, app, request, app.rate_limited(verdict))
            extra = app.rate_headers(verdict)
        else:
            extra = {}
        with app.lock:
            response = route.handler(request)
        response.headers.update(extra)
    except VendorError as error:
        response = error.response
    if decision.drop_after_write and request.method != "GET" and response.status < 500:
        stats["fault:apply_then_drop"] += 1
        return None
    if decision.fault == "malformed":
        payload = response.payload()
        response = Response(200, payload[: max(1, len(payload) // 2)], response.headers)
    return _finish(stats, app, request, response)


def _finish(stats: Counter[str], app: VendorApp, request: Request, response: Response) -> Response:
    stats[f"status:{response.status}"] += 1
    response.headers.setdefault(app.request_id_header, request.request_id)
    return response


def _inspection(sandbox: Sandbox, app: VendorApp, request: Request) -> Response:
    """Routes for tests and operators: see every record, change records over time, swap the faults."""
    parts = request.path.strip("/").split("/")[1:]
    method = request.method
    try:
        if parts == ["faults"] and method == "GET":
            return Response(200, sandbox.profile.model_dump(by_alias=True, exclude_defaults=True))
        if parts == ["faults"] and method == "PUT":
            profile = parse_profile(request.body.decode() or "{}", "PUT /__sandbox__/faults")
            sandbox.set_profile(profile)
            return Response(200, profile.model_dump(by_alias=True, exclude_defaults=True))
        if parts == ["stats"] and method == "GET":
            return Response(200, {v: dict(c) for v, c in sandbox.stats.items()})
        if parts == ["stats"] and method == "DELETE":
            for counter in sandbox.stats.values():
                counter.clear()
            return Response(200, {})
        if parts[:1] == ["records"] and len(parts) >= 2:
            collection = app.collections.get(parts[1])
            if collection is None:
                return Response(404, {"error": f"unknown object type {parts[1]!r}", "known": list(app.collections)})
            if len(parts) == 2 and method == "GET":
                with app.lock:
                    return Response(200, b"[" + b",".join(dumps(r) for r in collection) + b"]")
            if len(parts) == 2 and method == "POST":
                records = json.loads(request.body)
                with app.lock:
                    for record in records if isinstance(records, list) else [records]:
                        collection.put(record)
                return Response(200, {"stored": len(records) if isinstance(records, list) else 1})
            if len(parts) == 3 and method == "DELETE":
                with app.lock:
                    kept = app.delete(parts[1], app.coerce_id(parts[1], parts[2]), time.time())
                return Response(200, {"deleted": parts[2], "record": kept})
        if parts == ["mutate"] and method == "POST":
            return Response(200, _mutate(app, json.loads(request.body or b"{}")))
    except ConfigError as error:
        return Response(400, {"error": str(error)})
    except (ValueError, KeyError, TypeError) as error:
        return Response(400, {"error": f"{type(error).__name__}: {error}"})
    return Response(404, {"error": f"no sandbox route {method} {request.path}"})


def _mutate(app: VendorApp, order: dict[str, Any]) -> dict[str, Any]:
    """Edits `count` records and deletes `delete` records of one type, chosen reproducibly by `seed`."""
    object_type = order["object_type"]
    collection = app.collections[object_type]
    rng = random.Random(order.get("seed", 0))
    now = time.time()
    with app.lock:
        candidates = [r for r in collection if not (r.get("archived") or r.get("deleted") or r.get("deleted_at"))]
        chosen = rng.sample(candidates, min(len(candidates), int(order.get("count", 0)) + int(order.get("delete", 0))))
        edits, deletions = chosen[: int(order.get("count", 0))], chosen[int(order.get("count", 0)) :]
        changed = []
        for record in edits:
            updated = app.mutate(object_type, record, now, rng)
            collection.put(updated)
            changed.append(updated["id"])
        deleted = []
        for record in deletions:
            app.delete(object_type, record["id"], now)
            deleted.append(record["id"])
    return {"object_type": object_type, "changed": changed, "deleted": deleted}
