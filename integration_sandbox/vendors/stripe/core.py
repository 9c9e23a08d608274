"""What every Stripe resource shares: the app's state, ids, lookups, `expand[]`, events and list pages."""

from __future__ import annotations

import copy
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integration_sandbox.auth import Grant
from integration_sandbox.credentials import STRIPE_API_KEY
from integration_sandbox.faults import apply_drift
from integration_sandbox.kit import Host, Request, Response, Route, VendorApp, dumps
from integration_sandbox.ratelimit import Verdict
from integration_sandbox.store import Collection, Record
from integration_sandbox.vendors.stripe.auth import grant_for
from integration_sandbox.vendors.stripe.errors import SINGULAR, bad, missing, stripe_error
from integration_sandbox.vendors.stripe.idempotency import IdempotencyKeys
from integration_sandbox.vendors.stripe.listing import created_bounds, scan, scan_back
from integration_sandbox.vendors.stripe.params import Params, query_params

API_VERSION = "2024-06-20"
DAY_S = 86_400
ID_PREFIX = {"customers": "cus", "invoices": "in", "charges": "ch", "events": "evt", "invoiceitems": "ii"}
# Which id fields `expand[]` may replace with the object, and where that object lives.
EXPANDABLE = {
    "invoices": {"customer": "customers", "charge": "charges"},
    "charges": {"customer": "customers", "invoice": "invoices"},
    "invoiceitems": {"customer": "customers", "invoice": "invoices"},
}

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # in ASCII order
_DESCENDING = str.maketrans({chr(i): chr(0xFFFF - i) for i in range(128)})


class StripeCore(VendorApp):
    """The Stripe app without its resources: each resource module adds its endpoints to this."""

    def __init__(self, dataset_dir: Path | None, sandbox: Host) -> None:
        # Deleted customers keep their place in the listing order (a cursor on one stays valid).
        self._tombstone_created: dict[str, int] = {}
        self.clock: Callable[[], float] = time.time  # tests move it to age idempotency keys and events
        self._id_lock = threading.Lock()
        self._last_id_us = 0
        self.idempotency = IdempotencyKeys(lambda: self.clock())
        self._invoice_numbers: dict[str, int] | None = None
        super().__init__(dataset_dir, sandbox)
        for extra in ("events", "invoiceitems"):
            self.collections[extra] = Collection(extra, self.load(dataset_dir, extra), order_key=self.order_key(extra))

    # -- VendorApp contract --------------------------------------------------------------------------
    def order_key(self, object_type: str) -> Callable[[Record], Any]:
        """Newest first: `created` descending, then id descending (the ids minted here are time-ordered)."""
        tombstones = self._tombstone_created

        def newest_first(record: Record) -> tuple[int, str]:
            created = record.get("created")
            if created is None:
                created = tombstones.get(record["id"], 0)
            return (-int(created), str(record["id"]).translate(_DESCENDING))

        return newest_first

    def default_grants(self) -> list[Grant]:
        return [Grant(token=STRIPE_API_KEY)]

    def new_request_id(self) -> str:
        return "req_" + secrets.token_hex(7)  # one call: drawing 14 characters one by one costs 15% of a page

    def error(self, status: int, message: str) -> Response:
        if status == 404:
            found = re.match(r"no route (\w+) (\S+)", message)
            where = f" ({found.group(1)}: {found.group(2)})" if found else ""
            text = (
                f"Unrecognized request URL{where}. Please see https://stripe.com/docs or we can help at "
                "https://support.stripe.com/."
            )
            return stripe_error(404, text).response
        text = {
            500: "An unknown error occurred",
            502: "The server received an invalid response from an upstream server. Please try again.",
            503: "The server is temporarily unavailable. Please try again later.",
        }.get(status, message)
        return Response(status, {"error": {"message": text, "type": "api_error"}})

    def rate_limited(self, verdict: Verdict) -> Response:
        self.idempotency.release_thread()  # the request never reaches its endpoint
        return stripe_error(
            429,
            "Request rate limit exceeded. You can learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        ).response

    def authenticate(self, request: Request, route: Route) -> Grant:
        grant = grant_for(self.credentials, request, route)
        if request.method == "POST":
            idempotency_key = request.header("Idempotency-Key")
            if idempotency_key:
                self.idempotency.claim(idempotency_key, grant, request)
        return grant

    def idempotency_keys_in_flight(self) -> list[str]:
        return self.idempotency.in_flight()

    # -- helpers ----------------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock())

    def new_id(self, object_type_or_prefix: str) -> str:
        """`cus_…`: time-ordered, so ties on `created` list the newer object first."""
        prefix = ID_PREFIX.get(object_type_or_prefix, object_type_or_prefix)
        with self._id_lock:
            micros = max(time.time_ns() // 1000, self._last_id_us + 1)
            self._last_id_us = micros
        digits = ""
        while micros:
            micros, rest = divmod(micros, 62)
            digits = _ALPHABET[rest] + digits
        tail = "".join(secrets.choice(_ALPHABET) for _ in range(6))
        return f"{prefix}_{digits.rjust(10, '0')}{tail}"

    def _get(self, object_type: str, object_id: str, *, param: str = "id", status: int = 404) -> Record:
        record = self.collections[object_type].get(object_id)
        if record is None:
            raise missing(object_type, object_id, param, status)
        return record

    def _live_customer(self, customer_id: str, param: str = "customer") -> Record:
        record = self.collections["customers"].get(customer_id)
        if record is None or record.get("deleted"):
            raise missing("customers", customer_id, param)
        return record

    def _render(self, object_type: str, record: Record, expand: frozenset[str] = frozenset()) -> bytes:
        wanted = {f: t for f, t in EXPANDABLE.get(object_type, {}).items() if f in expand}
        if not wanted:
            return self.render(object_type, record)
        shaped = dict(record)
        for name, target in wanted.items():
            ref = record.get(name)
            if isinstance(ref, str) and self.collections[target].get(ref) is not None:
                shaped[name] = self.collections[target].get(ref)
        drift = self.settings.drift.get(object_type)
        return dumps(apply_drift(shaped, drift) if drift else shaped)

    def _ok(self, object_type: str, record: Record, expand: frozenset[str] = frozenset()) -> Response:
        return Response(200, self._render(object_type, record, expand))

    def _emit(
        self,
        event_type: str,
        snapshot: Record,
        request: Request | None,
        now: int,
        previous: dict[str, Any] | None = None,
    ) -> None:
        data: dict[str, Any] = {"object": copy.deepcopy(snapshot)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": self.new_id("events"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now,
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {
                "id": request.request_id if request else None,
                "idempotency_key": (request.header("Idempotency-Key") or None) if request else None,
            },
            "type": event_type,
        }
        self.store("events", event)

    def _update(
        self,
        object_type: str,
        record: Record,
        changes: dict[str, Any],
        request: Request | None,
        now: int,
        event_type: str | None = None,
    ) -> Record:
        """Stores `record` with `changes`; emits `<type>.updated` with previous_attributes if any changed."""
        updated = {**record, **changes}
        previous = changed_attributes(record, updated)
        if not previous:
            return record
        self.store(object_type, updated)
        self._emit(event_type or f"{SINGULAR[object_type]}.updated", updated, request, now, previous)
        return updated

    # -- listing ------------------------------------------------------------------------------------
    def _list(
        self,
        params: Params,
        object_type: str,
        keep: Callable[[Record], bool],
        url: str,
        *,
        oldest: int | None = None,
    ) -> Response:
        """One page in listing order, between the `created` bounds and the cursors, found by position."""
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        low, high = created_bounds(params)
        if oldest is not None:
            low = oldest if low is None else max(low, oldest)
        collection = self.collections[object_type]
        start = collection.index_past_key((-high - 0.5,)) if high is not None else 0
        end = collection.index_past_key((-low + 0.5,)) if low is not None else len(collection)
        after, before = params.text("starting_after"), params.text("ending_before")
        if after is not None and before is not None:
            raise bad("You may only specify one of these parameters: ending_before, starting_after.")
        if after is not None:
            position = collection.index_after(after)
            if position is None:
                raise missing(object_type, after, "starting_after", 400)
            start = max(start, position)
        if before is not None:
            position = collection.index_after(before)
            if position is None:
                raise missing(object_type, before, "ending_before", 400)
            records, more = scan_back(collection, start, min(end, position - 1), limit, keep)
        else:
            records, more = scan(collection, start, end, limit, keep)
        return Response(200, self._list_body(object_type, records, more, url, params.expand(in_list=True)))

    def _list_body(
        self, object_type: str, records: list[Record], has_more: bool, url: str, expand: frozenset[str]
    ) -> bytes:
        data = b"[" + b",".join(self._render(object_type, r, expand) for r in records) + b"]"
        more = b"true" if has_more else b"false"
        return b'{"object":"list","data":' + data + b',"has_more":' + more + b',"url":' + dumps(url) + b"}"

    def _retrieve(self, request: Request, object_type: str) -> Response:
        params = query_params(request, {"expand"})
        record = self._get(object_type, request.params["id"])
        return self._ok(object_type, record, params.expand())


def changed_attributes(old: Record, new: Record) -> dict[str, Any]:
    """Stripe's `previous_attributes`: old values of changed top-level fields; for hashes, of changed keys."""
    previous: dict[str, Any] = {}
    for name in set(old) | set(new):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            previous[name] = {k: before.get(k) for k in set(before) | set(after) if before.get(k) != after.get(k)}
        else:
            previous[name] = before
    return previous
