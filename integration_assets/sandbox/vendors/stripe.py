"""Stripe, imitated: `/v1` customers, invoices (with invoice items), charges, events and search.

What a connector meets at the real API and meets here too: form-encoded writes in bracket notation, lists
newest first with `starting_after`/`ending_before` cursors and `created[...]` ranges (no `updated` filter:
changes are seen through `/v1/events`, 30 days back), deleted customers kept as tombstones, idempotency keys
with Stripe's replay / mismatch / in-flight rules, restricted keys, and Stripe's error bodies and headers.
"""

from __future__ import annotations

import base64
import binascii
import copy
import fnmatch
import json
import logging
import re
import secrets
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from integration_assets.sandbox.auth import Grant
from integration_assets.sandbox.faults import apply_drift
from integration_assets.sandbox.ratelimit import Verdict
from integration_assets.sandbox.server import Request, Response, Route, VendorApp, VendorError, dumps
from integration_assets.sandbox.store import Collection, Record

log = logging.getLogger(__name__)

API_VERSION = "2024-06-20"
SANDBOX_KEY = "sk_test_sandbox"
ACCOUNT = "acct_1SandboxStripe00"
DAY_S = 86_400
EVENT_WINDOW_S = 30 * DAY_S  # /v1/events only reaches 30 days back
IDEMPOTENCY_TTL_S = DAY_S  # keys may be pruned after 24 h
MAX_IDEMPOTENCY_KEY = 255
MAX_AMOUNT = 99_999_999
ERROR_DOCS = "https://stripe.com/docs/error-codes/"

SINGULAR = {
    "customers": "customer",
    "invoices": "invoice",
    "charges": "charge",
    "events": "event",
    "invoiceitems": "invoiceitem",
}
ID_PREFIX = {"customers": "cus", "invoices": "in", "charges": "ch", "events": "evt", "invoiceitems": "ii"}
PERMISSION = {"customers": "customer", "invoices": "invoice", "charges": "charge", "events": "event"}
# Which id fields `expand[]` may replace with the object, and where that object lives.
EXPANDABLE = {
    "invoices": {"customer": "customers", "charge": "charges"},
    "charges": {"customer": "customers", "invoice": "invoices"},
    "invoiceitems": {"customer": "customers", "invoice": "invoices"},
}
_CURRENCY_CODES = (
    "usd aed aud bgn brl cad chf cny czk dkk eur gbp hkd huf idr ils inr isk jpy krw mxn myr nok nzd php pln "
    "ron sar sek sgd thb try twd zar"
)
CURRENCIES = frozenset(_CURRENCY_CODES.split())
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
SEARCH_FIELDS: dict[str, dict[str, str]] = {
    "customers": {
        "created": "number",
        "email": "string",
        "metadata": "metadata",
        "name": "string",
        "phone": "string",
    },
    "invoices": {
        "created": "number",
        "currency": "string",
        "customer": "string",
        "last_finalization_error_code": "string",
        "metadata": "metadata",
        "number": "string",
        "receipt_number": "string",
        "status": "string",
        "subscription": "string",
        "total": "number",
    },
    "charges": {
        "amount": "number",
        "billing_details.address.postal_code": "string",
        "created": "number",
        "currency": "string",
        "customer": "string",
        "disputed": "boolean",
        "metadata": "metadata",
        "payment_method_details.card.last4": "string",
        "refunded": "boolean",
        "status": "string",
    },
}
LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # in ASCII order
_DESCENDING = str.maketrans({chr(i): chr(0xFFFF - i) for i in range(128)})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


# -- errors ---------------------------------------------------------------------------------------------
class _Invalid(VendorError):
    """A request whose parameters failed validation: no endpoint ran, so no idempotent result is saved."""


def stripe_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    invalid: bool = False,
    headers: dict[str, str] | None = None,
) -> VendorError:
    """Stripe's `{"error": {...}}` body; `Stripe-Should-Retry` tells the SDK whether a retry can help."""
    body: dict[str, Any] = {}
    if code:
        body["code"] = code
        body["doc_url"] = ERROR_DOCS + code.replace("_", "-")
    body["message"] = message
    if param:
        body["param"] = param
    body["type"] = kind
    retry = {409: "true", 429: "true"}.get(status, "false" if 400 <= status < 500 else None)
    extra = {"Stripe-Should-Retry": retry} if retry else {}
    return (_Invalid if invalid else VendorError)(status, {"error": body}, {**extra, **(headers or {})})


def _bad(message: str, param: str | None = None) -> VendorError:
    return stripe_error(400, message, param=param, invalid=True)


def _missing(object_type: str, object_id: str, param: str, status: int = 400) -> VendorError:
    return stripe_error(status, f"No such {SINGULAR[object_type]}: '{object_id}'", code="resource_missing", param=param)


def mask_key(key: str) -> str:
    """`sk_test_****abcd`: the way Stripe echoes a key it refuses."""
    found = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    prefix, rest = (found.group(1), found.group(2)) if found else ("", key)
    return prefix + "*" * max(len(rest) - 4, 4) + rest[-4:] if len(rest) > 4 else prefix + "****"


# -- form decoding and parameter coercion -----------------------------------------------------------------
def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=1&e[]=x` → `{"a": {"b": [{"c": "1"}]}, "e": ["x"]}`; every leaf stays a string."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_BRACKET.findall(key[len(head) :])]
        node = root
        for depth, part in enumerate(parts):
            name = part if part != "" else str(len(node))  # `a[]` appends
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


_CLEAR = object()  # `metadata=` (empty): unset every key


class Params:
    """Decoded request parameters, read the way Stripe coerces and rejects them."""

    def __init__(self, pairs: Iterable[tuple[str, str]], allowed: Iterable[str]) -> None:
        self.data = decode_form(pairs)
        allowed = set(allowed)
        for name in self.data:
            if name not in allowed:
                raise _bad(f"Received unknown parameter: {name}", name)

    def has(self, name: str) -> bool:
        return name in self.data

    def text(self, name: str, *, required: bool = False, max_length: int | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise _bad(f"Missing required param: {name}.", name)
            return None
        if not isinstance(value, str):
            raise _bad(f"Invalid string: {_shown(value)}", name)
        if max_length is not None and len(value) > max_length:
            raise _bad(f"Invalid string: {value[:40]}...; must be at most {max_length} characters", name)
        return value

    def nullable_text(self, name: str, max_length: int | None = None) -> str | None:
        """An optional string where the empty string unsets the field."""
        value = self.text(name, max_length=max_length)
        return value if value else None

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        return _integer(self.data.get(name), name, required=required, minimum=minimum, maximum=maximum)

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise _bad(f"Invalid boolean: {_shown(value)}", name)

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.text(name)
        choices = tuple(choices)
        if value is not None and value not in choices:
            listed = ", ".join(f"`{c}`" for c in choices)
            raise _bad(f"Invalid {name}: must be one of {listed}", name)
        return value

    def currency(self, name: str = "currency") -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in CURRENCIES:
            supported = ", ".join(sorted(CURRENCIES))
            raise _bad(
                f"Invalid currency: {value.lower()}. Stripe currently supports these currencies: {supported}",
                name,
            )
        return value.lower()

    def metadata(self) -> dict[str, str | None] | object | None:
        """Metadata updates: key → value or None (unset the key); `_CLEAR` unsets all; None: not sent."""
        value = self.data.get("metadata")
        if value is None:
            return None
        if value == "":
            return _CLEAR
        if isinstance(value, list):  # metadata[0]=x decodes as a list
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise _bad("Invalid object", "metadata")
        if len(value) > 50:
            raise _bad("You can have at most 50 metadata keys.", "metadata")
        updates: dict[str, str | None] = {}
        for key, item in value.items():
            if not isinstance(item, str):
                raise _bad("Metadata values must be strings.", f"metadata[{key}]")
            if len(key) > 40:
                raise _bad(
                    f"Metadata keys can have up to 40 characters, but you passed in a key that is {len(key)} "
                    f"characters. Invalid key: {key}",
                    "metadata",
                )
            if len(item) > 500:
                raise _bad(
                    f"Metadata values can have up to 500 characters, but you passed in a value that is "
                    f"{len(item)} characters. Invalid value: {item[:40]}...",
                    f"metadata[{key}]",
                )
            updates[key] = item if item != "" else None
        return updates

    def expand(self, *, in_list: bool = False) -> frozenset[str]:
        value = self.data.get("expand")
        if value is None:
            return frozenset()
        items = value if isinstance(value, list) else [value]
        names = {str(v) for v in items if isinstance(v, str)}
        if in_list:
            names = {n.removeprefix("data.") for n in names}
        return frozenset(names)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _integer(
    value: Any, name: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    if value is None or value == "":
        if required:
            raise _bad(f"Missing required param: {name}.", name)
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _bad(f"Invalid integer: {_shown(value)}", name) from None
    if minimum is not None and number < minimum:
        raise _bad(f"This value must be greater than or equal to {minimum}.", name)
    if maximum is not None and number > maximum:
        raise _bad(f"This value must be less than or equal to {maximum}.", name)
    return number


def merge_metadata(current: dict[str, str], updates: dict[str, str | None] | object | None) -> dict[str, str]:
    if updates is None:
        return dict(current)
    if updates is _CLEAR:
        return {}
    merged = dict(current)
    for key, value in updates.items():  # type: ignore[union-attr]
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


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


# -- search -----------------------------------------------------------------------------------------------
_CLAUSE = re.compile(
    r"""(?P<neg>-?)(?P<field>metadata\[(?P<q>['"])(?P<key>.+?)(?P=q)\]|[A-Za-z_][\w.]*)\s*"""
    r"""(?P<op>:|~|>=|<=|>|<)\s*"""
    r"""(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<number>-?\d+(?:\.\d+)?)|(?P<null>null)\b)"""
)
_JOIN = re.compile(r"\s+(?:(AND|OR)\s+)?", re.IGNORECASE)
_PARSE_HELP = (
    'We were unable to parse your search query. Try using the format `metadata["key"]:"value"` to query '
    'for metadata or `key:"value"` to query for other fields.'
)


@dataclass(frozen=True)
class Clause:
    field: str
    metadata_key: str | None
    op: str
    value: str | float | None
    negate: bool

    def matches(self, record: Record, kind: str) -> bool:
        if self.metadata_key is not None:
            actual: Any = (record.get("metadata") or {}).get(self.metadata_key)
        else:
            actual = record
            for part in self.field.split("."):
                actual = actual.get(part) if isinstance(actual, dict) else None
        return self._compare(actual, kind) != self.negate

    def _compare(self, actual: Any, kind: str) -> bool:
        expected = self.value
        if expected is None:
            return actual is None
        if self.op == "~":
            return actual is not None and str(expected).lower() in str(actual).lower()
        if kind == "number":
            try:
                left, right = float(actual), float(expected)
            except (TypeError, ValueError):
                return False
            return {":": left == right, ">": left > right, "<": left < right, ">=": left >= right}.get(
                self.op, left <= right
            )
        if kind == "boolean":
            return str(actual).lower() == str(expected).lower()
        if kind == "metadata":
            return actual == expected
        return actual is not None and str(actual).lower() == str(expected).lower()


def parse_search(query: str, object_type: str) -> tuple[str, list[Clause]]:
    """Stripe's search syntax (the subset connectors use): clauses joined by AND or OR, not both."""
    fields = SEARCH_FIELDS[object_type]
    clauses: list[Clause] = []
    joiners: set[str] = set()
    position, text = 0, query.strip()
    while True:
        found = _CLAUSE.match(text, position)
        if not found:
            raise _bad(_PARSE_HELP, "query")
        name = "metadata" if found["key"] is not None else found["field"]
        kind = fields.get(name)
        if kind is None:
            raise _bad(
                f"Field `{name}` is an unsupported search field for resource `{object_type}`. See "
                f"http://stripe.com/docs/search#query-fields-for-{object_type} for a list of supported "
                "fields.",
                "query",
            )
        op = found["op"]
        if op in (">", "<", ">=", "<=") and kind != "number":
            raise _bad(f"Field `{name}` does not support the `{op}` operator.", "query")
        if found["number"] is not None:
            value: str | float | None = float(found["number"]) if kind == "number" else found["number"]
        elif found["null"] is not None:
            value = None
        else:
            raw = found["single"] if found["single"] is not None else found["double"]
            value = re.sub(r"\\(.)", r"\1", raw)
        if op == "~" and (value is None or len(str(value)) < 3):
            raise _bad("Substring matching (`~`) requires a value of at least 3 characters.", "query")
        clauses.append(Clause(name, found["key"], op, value, bool(found["neg"])))
        position = found.end()
        if position == len(text):
            break
        join = _JOIN.match(text, position)
        if not join or join.end() == len(text):
            raise _bad(_PARSE_HELP, "query")
        joiners.add((join.group(1) or "AND").upper())
        position = join.end()
    if len(joiners) > 1:
        raise _bad("You cannot combine `AND` and `OR` in the same search query.", "query")
    if len(clauses) > 10:
        raise _bad("Search queries can contain at most 10 clauses.", "query")
    return (joiners.pop() if joiners else "AND"), clauses


# -- idempotency --------------------------------------------------------------------------------------------
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


# -- the app --------------------------------------------------------------------------------------------
class StripeApp(VendorApp):
    vendor: ClassVar[str] = "stripe"
    object_types: ClassVar[tuple[str, ...]] = ("customers", "invoices", "charges")
    request_id_header: ClassVar[str] = "Request-Id"

    def __init__(self, dataset_dir: Path | None, sandbox) -> None:
        # Deleted customers keep their place in the listing order (a cursor on one stays valid).
        self._tombstone_created: dict[str, int] = {}
        self.clock: Callable[[], float] = time.time  # tests move it to age idempotency keys and events
        self._id_lock = threading.Lock()
        self._last_id_us = 0
        self._idempotency: OrderedDict[tuple[str, str], _Idempotent] = OrderedDict()
        self._idempotency_lock = threading.Lock()
        self._invoice_numbers: dict[str, int] | None = None
        super().__init__(dataset_dir, sandbox)
        for extra in ("events", "invoiceitems"):
            path = dataset_dir / self.vendor / f"{extra}.json" if dataset_dir else None
            records = json.loads(path.read_text()) if path and path.exists() else []
            self.collections[extra] = Collection(extra, records, order_key=self.order_key(extra))

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
        return [Grant(token=SANDBOX_KEY)]

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
        self._release_claims_of_this_thread()  # the request never reaches its endpoint
        return stripe_error(
            429,
            "Request rate limit exceeded. You can learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        ).response

    def authenticate(self, request: Request, route: Route) -> Grant:
        key = self._api_key(request)
        grant = self.credentials.lookup(key)
        if grant is None:
            raise stripe_error(401, f"Invalid API Key provided: {mask_key(key)}")
        if grant.expired(time.time()):
            raise stripe_error(401, f"Expired API Key provided: {mask_key(key)}", code="api_key_expired")
        if not self._permits(grant, route.scope):
            resource, _, level = (route.scope or "").partition(":")
            raise stripe_error(
                403,
                f"The provided key '{mask_key(key)}' does not have the required permissions for this "
                f"endpoint on account '{ACCOUNT}'. Having the 'rak_{PERMISSION[resource]}_{level}' "
                "permission would allow this request to continue.",
            )
        if request.method == "POST":
            idempotency_key = request.header("Idempotency-Key")
            if idempotency_key:
                self._claim(idempotency_key, grant, request)
        return grant

    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        request_time = int(now)
        if object_type == "customers":
            choice = rng.choice(["name", "phone", "email", "metadata"])
            email = record.get("email")
            if choice == "email" and email:
                changed = {"email": email.lower() if email != email.lower() else email.upper()}
            elif choice == "name":
                base = record.get("name") or "Customer"
                changed = {"name": f"{base} {rng.choice(['Ltd', 'Inc.', 'GmbH', '& Co', 'Group'])}"}
            elif choice == "phone":
                changed = {"phone": "+1" + "".join(str(rng.randrange(10)) for _ in range(10))}
            else:
                changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("customers", record, changed, None, request_time)
        if object_type == "invoices" and record.get("status") in ("open", "uncollectible"):
            return self._pay(record, out_of_band=False, request=None, now=request_time)
        if object_type == "invoices":
            changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("invoices", record, changed, None, request_time)
        if object_type == "charges":
            if rng.random() < 0.5:
                changed = {"description": f"{record.get('description') or 'Payment'} (edited)"}
            else:
                changed = {"metadata": {**(record.get("metadata") or {}), "revision": str(rng.randrange(10**6))}}
            return self._update("charges", record, changed, None, request_time)
        return dict(record)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        record = self.collections[object_type].get(record_id)
        if record is None:
            return None
        when = int(now)
        if object_type == "customers":
            return record if record.get("deleted") else self._delete_customer(record, None, when)
        if object_type == "invoices":
            if record.get("status") == "draft":
                self._delete_draft(record, None, when)
                return None
            if record.get("status") in ("open", "uncollectible"):
                return self._transition(record, "void", "invoice.voided", None, when)
            return record  # paid and void invoices can be neither deleted nor voided
        if object_type == "charges":
            if record.get("refunded"):
                return record
            amount = int(record.get("amount") or 0)
            return self._update(
                "charges",
                record,
                {"refunded": True, "amount_refunded": amount},
                None,
                when,
                "charge.refunded",
            )
        self.collections[object_type].remove(record_id)
        return None

    # -- auth and idempotency ------------------------------------------------------------------------
    def _api_key(self, request: Request) -> str:
        header = (request.header("Authorization") or "").strip()
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return value
        if scheme.lower() == "basic" and value:
            try:
                user = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                user = ""
            if user:
                return user
        raise stripe_error(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
            "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )

    @staticmethod
    def _permits(grant: Grant, scope: str | None) -> bool:
        """Restricted keys: `customers:read` style or `rak_customer_read` style; write implies read."""
        if scope is None or grant.scopes is None:
            return True
        resource, _, level = scope.partition(":")
        accepted = {scope, f"rak_{PERMISSION[resource]}_{level}"}
        if level == "read":
            accepted |= {f"{resource}:write", f"rak_{PERMISSION[resource]}_write"}
        return bool(accepted & grant.scopes)

    def _claim(self, key: str, grant: Grant, request: Request) -> None:
        """Marks the key in flight before the request queues for the app lock; a second user gets 409."""
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise stripe_error(
                400,
                f"Invalid idempotency key: keys can be at most {MAX_IDEMPOTENCY_KEY} characters long, "
                f"but you passed one of {len(key)} characters.",
                param="Idempotency-Key",
            )
        now, thread = self.clock(), threading.get_ident()
        with self._idempotency_lock:
            self._release_claims_of_this_thread(locked=True)
            self._prune(now)
            ident = (key, grant.token)
            entry = self._idempotency.get(ident)
            if entry is None:
                self._idempotency[ident] = _Idempotent(_fingerprint(request), request.request_id, thread, now)
            elif entry.status is None and entry.owner != request.request_id:
                raise stripe_error(
                    409,
                    "There is currently another in-progress request using this Idempotent Key (that probably "
                    f"means you submitted twice, and the other request is still going through): {key}. "
                    "Please try again later.",
                    code="idempotency_key_in_use",
                )

    def _release_claims_of_this_thread(self, locked: bool = False) -> None:
        """Drops in-flight claims of earlier requests on this connection that never reached their endpoint."""
        thread = threading.get_ident()
        if not locked:
            with self._idempotency_lock:
                self._release_claims_of_this_thread(locked=True)
            return
        stale = [k for k, e in self._idempotency.items() if e.status is None and e.thread == thread]
        for ident in stale:
            del self._idempotency[ident]

    def _prune(self, now: float) -> None:
        while self._idempotency:
            ident, entry = next(iter(self._idempotency.items()))
            if entry.created > now - IDEMPOTENCY_TTL_S:
                break
            del self._idempotency[ident]

    def idempotency_keys_in_flight(self) -> list[str]:
        with self._idempotency_lock:
            return [key for (key, _), e in self._idempotency.items() if e.status is None]

    def _idempotent(self, endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Runs a POST endpoint once per idempotency key; replays its first result to later requests."""

        def run(request: Request) -> Response:
            key = request.header("Idempotency-Key")
            if not key:
                return self._execute(endpoint, request)[0]
            ident = (key, request.grant.token if request.grant else "")
            with self._idempotency_lock:
                entry = self._idempotency.get(ident)
                if entry is None:  # pruned while queued: claim it now
                    entry = _Idempotent(_fingerprint(request), request.request_id, threading.get_ident(), self.clock())
                    self._idempotency[ident] = entry
            if entry.status is not None or entry.owner != request.request_id:
                return self._replay(entry, key, request)
            try:
                response, save = self._execute(endpoint, request)
                response.headers["Idempotency-Key"] = key
                with self._idempotency_lock:
                    if save:
                        entry.status, entry.body = response.status, response.payload()
                        entry.headers = {k: v for k, v in response.headers.items() if k != "Content-Type"}
                    else:
                        self._idempotency.pop(ident, None)
                return response
            finally:
                with self._idempotency_lock:
                    if entry.status is None and self._idempotency.get(ident) is entry:
                        del self._idempotency[ident]

        return run

    def _replay(self, entry: _Idempotent, key: str, request: Request) -> Response:
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

    def _execute(self, endpoint: Callable[[Request], Response], request: Request) -> tuple[Response, bool]:
        """The endpoint's response and whether it is saved for the key (not when parameters failed)."""
        try:
            return endpoint(request), True
        except _Invalid as error:
            return error.response, False
        except VendorError as error:
            return error.response, True
        except Exception:
            log.exception("stripe sandbox endpoint %s %s failed", request.method, request.path)
            body = {"error": {"message": "An unknown error occurred", "type": "api_error"}}
            return Response(500, body, {"Stripe-Should-Retry": "false"}), True

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

    @staticmethod
    def _query(request: Request, allowed: Iterable[str]) -> Params:
        return Params(((k, v) for k, values in request.query.items() for v in values), allowed)

    @staticmethod
    def _form(request: Request, allowed: Iterable[str]) -> Params:
        pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        pairs += [(k, v) for k, values in request.query.items() for v in values]
        return Params(pairs, allowed)

    def _get(self, object_type: str, object_id: str, *, param: str = "id", status: int = 404) -> Record:
        record = self.collections[object_type].get(object_id)
        if record is None:
            raise _missing(object_type, object_id, param, status)
        return record

    def _live_customer(self, customer_id: str, param: str = "customer") -> Record:
        record = self.collections["customers"].get(customer_id)
        if record is None or record.get("deleted"):
            raise _missing("customers", customer_id, param)
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
        low, high = self._created_bounds(params)
        if oldest is not None:
            low = oldest if low is None else max(low, oldest)
        collection = self.collections[object_type]
        start = collection.index_past_key((-high - 0.5,)) if high is not None else 0
        end = collection.index_past_key((-low + 0.5,)) if low is not None else len(collection)
        after, before = params.text("starting_after"), params.text("ending_before")
        if after is not None and before is not None:
            raise _bad("You may only specify one of these parameters: ending_before, starting_after.")
        if after is not None:
            position = collection.index_after(after)
            if position is None:
                raise _missing(object_type, after, "starting_after", 400)
            start = max(start, position)
        if before is not None:
            position = collection.index_after(before)
            if position is None:
                raise _missing(object_type, before, "ending_before", 400)
            records, more = self._scan_back(collection, start, min(end, position - 1), limit, keep)
        else:
            records, more = self._scan(collection, start, end, limit, keep)
        return Response(200, self._list_body(object_type, records, more, url, params.expand(in_list=True)))

    def _list_body(
        self, object_type: str, records: list[Record], has_more: bool, url: str, expand: frozenset[str]
    ) -> bytes:
        data = b"[" + b",".join(self._render(object_type, r, expand) for r in records) + b"]"
        more = b"true" if has_more else b"false"
        return b'{"object":"list","data":' + data + b',"has_more":' + more + b',"url":' + dumps(url) + b"}"

    @staticmethod
    def _created_bounds(params: Params) -> tuple[int | None, int | None]:
        """`created=<t>` or `created[gt|gte|lt|lte]` as inclusive bounds (low, high)."""
        value = params.data.get("created")
        if value is None:
            return None, None
        if not isinstance(value, dict):
            moment = _integer(value, "created")
            return moment, moment
        low: int | None = None
        high: int | None = None
        for op, raw in value.items():
            if op not in ("gt", "gte", "lt", "lte"):
                raise _bad(f"Received unknown parameter: created[{op}]", f"created[{op}]")
            moment = _integer(raw, f"created[{op}]")
            if moment is None:
                continue
            if op in ("gt", "gte"):
                bound = moment + 1 if op == "gt" else moment
                low = bound if low is None else max(low, bound)
            else:
                bound = moment - 1 if op == "lt" else moment
                high = bound if high is None else min(high, bound)
        return low, high

    @staticmethod
    def _scan(
        collection: Collection, start: int, end: int, limit: int, keep: Callable[[Record], bool]
    ) -> tuple[list[Record], bool]:
        """Up to `limit` kept records from `start`, and whether one more exists before `end`."""
        found: list[Record] = []
        position = start
        while position < end and len(found) <= limit:
            batch, _ = collection.scan(position, min(end - position, max(limit + 1 - len(found), 64)))
            if not batch:
                break
            position += len(batch)
            for record in batch:
                if keep(record):
                    found.append(record)
                    if len(found) > limit:
                        break
        return found[:limit], len(found) > limit

    @staticmethod
    def _scan_back(
        collection: Collection, start: int, end: int, limit: int, keep: Callable[[Record], bool]
    ) -> tuple[list[Record], bool]:
        """The `limit` kept records just before `end` (in listing order), and whether more precede them."""
        found: list[Record] = []
        position = end
        while position > start and len(found) <= limit:
            low = max(start, position - max(limit + 1, 64))
            batch, _ = collection.scan(low, position - low)
            for record in reversed(batch):
                if keep(record):
                    found.append(record)
                    if len(found) > limit:
                        break
            position = low
        return list(reversed(found[:limit])), len(found) > limit

    def _search(self, request: Request, object_type: str) -> Response:
        params = self._query(request, {"query", "limit", "page", "expand"})
        combinator, clauses = parse_search(params.text("query", required=True) or "", object_type)
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        collection = self.collections[object_type]
        start = 0
        page = params.text("page")
        if page:
            try:
                after = base64.urlsafe_b64decode(page.removeprefix("page_").encode() + b"==").decode()
            except (binascii.Error, UnicodeDecodeError):
                after = ""
            position = collection.index_after(after) if after else None
            if position is None:
                raise _bad(f"Invalid page: {page}", "page")
            start = position
        kinds = SEARCH_FIELDS[object_type]
        test = all if combinator == "AND" else any
        # Stripe's search index trails writes ("up to a minute"): a record younger than the lag is not found yet
        indexed_before = self.clock() - self.settings.search_lag_s

        def keep(record: Record) -> bool:
            if self.settings.search_lag_s and (record.get("created") or 0) > indexed_before:
                return False
            return not record.get("deleted") and test(c.matches(record, kinds[c.field]) for c in clauses)

        records, more = self._scan(collection, start, len(collection), limit, keep)
        next_page = (
            "page_" + base64.urlsafe_b64encode(str(records[-1]["id"]).encode()).decode().rstrip("=")
            if more and records
            else None
        )
        expand = params.expand(in_list=True)
        data = b"[" + b",".join(self._render(object_type, r, expand) for r in records) + b"]"
        body = (
            b'{"object":"search_result","data":'
            + data
            + b',"has_more":'
            + (b"true" if more else b"false")
            + b',"next_page":'
            + dumps(next_page)
            + b',"url":'
            + dumps(f"/v1/{object_type}/search")
            + b"}"
        )
        return Response(200, body)

    def _retrieve(self, request: Request, object_type: str) -> Response:
        params = self._query(request, {"expand"})
        record = self._get(object_type, request.params["id"])
        return self._ok(object_type, record, params.expand())

    # -- routes ---------------------------------------------------------------------------------------
    def build_routes(self) -> list[Route]:
        def read(kind: str) -> str:
            return f"{kind}:read"

        def write(kind: str) -> str:
            return f"{kind}:write"

        def post(template: str, endpoint: Callable[[Request], Response], scope: str) -> Route:
            return Route("POST", template, self._idempotent(endpoint), scope)

        return [
            Route("GET", "/v1/customers/search", lambda r: self._search(r, "customers"), read("customers")),
            Route("GET", "/v1/customers", self._list_customers, read("customers")),
            post("/v1/customers", self._create_customer, write("customers")),
            Route("GET", "/v1/customers/{id}", lambda r: self._retrieve(r, "customers"), read("customers")),
            post("/v1/customers/{id}", self._update_customer, write("customers")),
            Route("DELETE", "/v1/customers/{id}", self._delete_customer_route, write("customers")),
            Route("GET", "/v1/invoices/search", lambda r: self._search(r, "invoices"), read("invoices")),
            Route("GET", "/v1/invoices", self._list_invoices, read("invoices")),
            post("/v1/invoices", self._create_invoice, write("invoices")),
            Route("GET", "/v1/invoices/{id}", lambda r: self._retrieve(r, "invoices"), read("invoices")),
            post("/v1/invoices/{id}", self._update_invoice, write("invoices")),
            Route("DELETE", "/v1/invoices/{id}", self._delete_invoice_route, write("invoices")),
            Route("GET", "/v1/invoices/{id}/lines", self._invoice_lines, read("invoices")),
            post("/v1/invoices/{id}/finalize", self._finalize_invoice, write("invoices")),
            post("/v1/invoices/{id}/pay", self._pay_invoice, write("invoices")),
            post("/v1/invoices/{id}/void", self._void_invoice, write("invoices")),
            post("/v1/invoices/{id}/mark_uncollectible", self._mark_uncollectible, write("invoices")),
            Route("GET", "/v1/invoiceitems", self._list_invoiceitems, read("invoices")),
            post("/v1/invoiceitems", self._create_invoiceitem, write("invoices")),
            Route("GET", "/v1/invoiceitems/{id}", lambda r: self._retrieve(r, "invoiceitems"), read("invoices")),
            Route("GET", "/v1/charges/search", lambda r: self._search(r, "charges"), read("charges")),
            Route("GET", "/v1/charges", self._list_charges, read("charges")),
            Route("GET", "/v1/charges/{id}", lambda r: self._retrieve(r, "charges"), read("charges")),
            post("/v1/charges/{id}", self._update_charge, write("charges")),
            Route("GET", "/v1/events", self._list_events, read("events")),
            Route("GET", "/v1/events/{id}", lambda r: self._retrieve(r, "events"), read("events")),
        ]

    # -- customers ----------------------------------------------------------------------------------
    CUSTOMER_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {
            "address",
            "balance",
            "description",
            "email",
            "expand",
            "invoice_prefix",
            "invoice_settings",
            "metadata",
            "name",
            "next_invoice_sequence",
            "payment_method",
            "phone",
            "preferred_locales",
            "shipping",
            "source",
            "tax_exempt",
            "test_clock",
        }
    )

    def _list_customers(self, request: Request) -> Response:
        params = self._query(request, LIST_PARAMS | {"email", "test_clock"})
        email = params.text("email", max_length=512)

        def keep(record: Record) -> bool:
            return not record.get("deleted") and (email is None or record.get("email") == email)

        return self._list(params, "customers", keep, "/v1/customers")

    def _customer_changes(self, params: Params, current: Record) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if params.has("email"):
            email = params.nullable_text("email", max_length=512)
            if email is not None and not _EMAIL.match(email):
                raise _bad(f"Invalid email address: {email}", "email")
            changes["email"] = email
        for name, limit in (("name", 256), ("phone", 20), ("description", 350)):
            if params.has(name):
                changes[name] = params.nullable_text(name, max_length=limit)
        for name in ("address", "shipping"):
            value = params.data.get(name)
            if value is not None:
                if value != "" and not isinstance(value, dict):
                    raise _bad("Invalid object", name)
                changes[name] = value or None
        if params.has("preferred_locales"):
            locales = params.data["preferred_locales"]
            changes["preferred_locales"] = (
                [] if locales == "" else list(locales if isinstance(locales, list) else [locales])
            )
        if params.has("invoice_prefix"):
            prefix = params.text("invoice_prefix") or ""
            if not re.fullmatch(r"[A-Z0-9]{3,12}", prefix):
                raise _bad("Invoice prefixes must be 3-12 uppercase letters or numbers.", "invoice_prefix")
            changes["invoice_prefix"] = prefix
        tax_exempt = params.choice("tax_exempt", ("none", "exempt", "reverse"))
        if tax_exempt is not None:
            changes["tax_exempt"] = tax_exempt
        balance = params.integer("balance")
        if balance is not None:
            changes["balance"] = balance
        sequence = params.integer("next_invoice_sequence", minimum=1)
        if sequence is not None:
            changes["next_invoice_sequence"] = sequence
        settings = params.data.get("invoice_settings")
        if isinstance(settings, dict):
            changes["invoice_settings"] = {**(current.get("invoice_settings") or {}), **settings}
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        return changes

    def _create_customer(self, request: Request) -> Response:
        params = self._form(request, self.CUSTOMER_PARAMS)
        now = self._now()
        record: Record = {
            "id": self.new_id("customers"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": now,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        record.update(self._customer_changes(params, record))
        self.store("customers", record)
        self._emit("customer.created", record, request, now)
        return self._ok("customers", record)

    def _update_customer(self, request: Request) -> Response:
        params = self._form(request, self.CUSTOMER_PARAMS)
        current = self._get("customers", request.params["id"])
        if current.get("deleted"):
            raise _missing("customers", current["id"], "id", 404)
        changes = self._customer_changes(params, current)
        updated = self._update("customers", current, changes, request, self._now())
        return self._ok("customers", updated)

    def _delete_customer_route(self, request: Request) -> Response:
        self._query(request, ())
        current = self._get("customers", request.params["id"])
        if current.get("deleted"):
            raise _missing("customers", current["id"], "id", 404)
        return self._ok("customers", self._delete_customer(current, request, self._now()))

    def _delete_customer(self, current: Record, request: Request | None, now: int) -> Record:
        tombstone = {"id": current["id"], "object": "customer", "deleted": True}
        self._tombstone_created[current["id"]] = int(current.get("created") or 0)
        self.store("customers", tombstone)
        self._emit("customer.deleted", current, request, now)
        return tombstone

    # -- invoice items ----------------------------------------------------------------------------
    def _list_invoiceitems(self, request: Request) -> Response:
        params = self._query(request, LIST_PARAMS | {"customer", "invoice", "pending"})
        customer, invoice, pending = (
            params.text("customer"),
            params.text("invoice"),
            params.boolean("pending"),
        )

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (invoice is None or record.get("invoice") == invoice)
                and (pending is None or (record.get("invoice") is None) == pending)
            )

        return self._list(params, "invoiceitems", keep, "/v1/invoiceitems")

    def _create_invoiceitem(self, request: Request) -> Response:
        params = self._form(
            request,
            {
                "amount",
                "currency",
                "customer",
                "description",
                "discountable",
                "expand",
                "invoice",
                "metadata",
                "period",
                "quantity",
                "unit_amount",
            },
        )
        customer_id = params.text("customer", required=True) or ""
        amount = params.integer("amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
        unit_amount = params.integer("unit_amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)
        quantity = params.integer("quantity", minimum=0)
        currency = params.currency()
        metadata = params.metadata()
        if amount is not None and (unit_amount is not None or quantity is not None):
            raise _bad("You may only specify one of these parameters: amount, unit_amount.", "amount")
        if amount is None and unit_amount is None:
            raise _bad("Missing required param: amount.", "amount")
        quantity = 1 if quantity is None else quantity
        amount = amount if amount is not None else (unit_amount or 0) * quantity
        customer = self._live_customer(customer_id)
        invoice = None
        invoice_id = params.text("invoice")
        if invoice_id:
            invoice = self._get("invoices", invoice_id, param="invoice", status=400)
            if invoice.get("customer") != customer_id:
                raise _bad(f"The invoice {invoice_id} belongs to a different customer.", "invoice")
            if invoice.get("status") != "draft":
                raise stripe_error(
                    400,
                    f"Invoice {invoice_id} is no longer a draft: invoice items can only be added to drafts.",
                    code="invoice_not_editable",
                    param="invoice",
                )
        currency = currency or (invoice or {}).get("currency") or customer.get("currency")
        if not currency:
            raise _bad("Missing required param: currency.", "currency")
        if invoice is not None and currency != invoice.get("currency"):
            raise _bad(
                f"The currency of the invoice item ({currency}) must match the currency of the invoice "
                f"({invoice.get('currency')}).",
                "currency",
            )
        now = self._now()
        period = params.data.get("period") if isinstance(params.data.get("period"), dict) else None
        item: Record = {
            "id": self.new_id("invoiceitems"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer_id,
            "date": now,
            "description": params.nullable_text("description"),
            "discountable": params.boolean("discountable") is not False,
            "invoice": invoice_id or None,
            "livemode": False,
            "metadata": merge_metadata({}, metadata),
            "period": {
                "start": int((period or {}).get("start") or now),
                "end": int((period or {}).get("end") or now),
            },
            "proration": False,
            "quantity": quantity,
            "unit_amount": unit_amount if unit_amount is not None else (amount // quantity if quantity else amount),
        }
        self.store("invoiceitems", item)
        self._emit("invoiceitem.created", item, request, now)
        if invoice is not None:
            self._attach_items(invoice, [item], request, now, emit=True)
        return self._ok("invoiceitems", item, params.expand())

    # -- invoices ----------------------------------------------------------------------------------
    def _list_invoices(self, request: Request) -> Response:
        params = self._query(
            request, LIST_PARAMS | {"customer", "status", "collection_method", "subscription", "due_date"}
        )
        customer = params.text("customer")
        status = params.choice("status", INVOICE_STATUSES)
        method = params.choice("collection_method", ("charge_automatically", "send_invoice"))
        subscription = params.text("subscription")

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (status is None or record.get("status") == status)
                and (method is None or record.get("collection_method") == method)
                and (subscription is None or record.get("subscription") == subscription)
            )

        return self._list(params, "invoices", keep, "/v1/invoices")

    INVOICE_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {"auto_advance", "collection_method", "days_until_due", "description", "due_date", "expand", "footer"}
        | {"metadata"}
    )

    def _invoice_terms(self, params: Params, current: Record) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        method = params.choice("collection_method", ("charge_automatically", "send_invoice"))
        if method is not None:
            changes["collection_method"] = method
        days = params.integer("days_until_due", minimum=0, maximum=730)
        due_date = params.integer("due_date")
        effective = method or current.get("collection_method") or "charge_automatically"
        if (days is not None or due_date is not None) and effective != "send_invoice":
            raise _bad(
                "You can only set `days_until_due` or `due_date` on invoices with `collection_method=send_invoice`.",
                "days_until_due" if days is not None else "due_date",
            )
        if days is not None:
            changes["days_until_due"] = days
        if due_date is not None:
            changes["due_date"] = due_date
        if effective == "charge_automatically" and method is not None:
            changes["days_until_due"] = None
            changes["due_date"] = None
        auto_advance = params.boolean("auto_advance")
        if auto_advance is not None:
            changes["auto_advance"] = auto_advance
        for name in ("description", "footer"):
            if params.has(name):
                changes[name] = params.nullable_text(name)
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        return changes

    def _create_invoice(self, request: Request) -> Response:
        params = self._form(request, self.INVOICE_PARAMS | {"customer", "currency", "pending_invoice_items_behavior"})
        customer_id = params.text("customer", required=True) or ""
        currency = params.currency()
        behaviour = params.choice("pending_invoice_items_behavior", ("exclude", "include"))
        draft_terms = self._invoice_terms(params, {})
        if draft_terms.get("collection_method") == "send_invoice" and not (
            draft_terms.get("days_until_due") is not None or draft_terms.get("due_date") is not None
        ):
            raise _bad(
                "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.",
                "days_until_due",
            )
        customer = self._live_customer(customer_id)
        pending: list[Record] = []
        if behaviour == "include":
            pending = [
                r for r in self.collections["invoiceitems"] if r.get("customer") == customer_id and not r.get("invoice")
            ]
            currency = currency or (pending[0]["currency"] if pending else None)
            pending = [r for r in pending if r.get("currency") == (currency or r.get("currency"))]
        currency = currency or customer.get("currency") or "usd"
        now = self._now()
        invoice_id = self.new_id("invoices")
        invoice: Record = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Sandbox, Inc.",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": False,
            "billing_reason": "manual",
            "charge": None,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": currency,
            "customer": customer_id,
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "days_until_due": None,
            "description": None,
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "footer": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "number": None,
            "paid": False,
            "paid_out_of_band": False,
            "payment_intent": None,
            "period_end": now,
            "period_start": now,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": None,
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "tax": None,
            "total": 0,
            "total_excluding_tax": 0,
            "webhooks_delivered_at": None,
        }
        invoice.update(draft_terms)
        if pending:
            invoice = self._attach_items(invoice, pending, request, now, emit=False)
        self.store("invoices", invoice)
        self._emit("invoice.created", invoice, request, now)
        return self._ok("invoices", invoice, params.expand())

    def _attach_items(
        self, invoice: Record, items: list[Record], request: Request | None, now: int, *, emit: bool
    ) -> Record:
        """The draft with `items` as new lines and its totals re-summed; the items point at it."""
        lines = list((invoice.get("lines") or {}).get("data") or [])
        for item in items:
            lines.append(
                {
                    "id": "il_" + item["id"].split("_", 1)[1],
                    "object": "line_item",
                    "amount": item["amount"],
                    "currency": item["currency"],
                    "description": item.get("description"),
                    "discountable": item.get("discountable", True),
                    "invoice": invoice["id"],
                    "invoice_item": item["id"],
                    "livemode": False,
                    "metadata": dict(item.get("metadata") or {}),
                    "period": dict(item.get("period") or {}),
                    "proration": False,
                    "quantity": item.get("quantity", 1),
                    "type": "invoiceitem",
                }
            )
            if item.get("invoice") != invoice["id"]:
                self.store("invoiceitems", {**item, "invoice": invoice["id"]})
        subtotal = sum(int(line.get("amount") or 0) for line in lines)
        due = max(subtotal, 0)
        changes = {
            "lines": {
                **(invoice.get("lines") or {}),
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
            },
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "total": subtotal,
            "total_excluding_tax": subtotal,
            "amount_due": due,
            "amount_paid": 0,
            "amount_remaining": due,
        }
        if emit:
            return self._update("invoices", invoice, changes, request, now)
        return {**invoice, **changes}

    def _update_invoice(self, request: Request) -> Response:
        params = self._form(request, self.INVOICE_PARAMS)
        current = self._get("invoices", request.params["id"])
        status = current.get("status")
        if status != "draft":
            locked = [n for n in ("collection_method", "days_until_due", "due_date") if params.has(n)]
            if status in ("paid", "void") and params.has("auto_advance"):
                locked.append("auto_advance")
            if locked:
                raise stripe_error(
                    400,
                    f"Finalized invoices can't be updated in this way: `{locked[0]}` can only be changed "
                    "on a draft invoice.",
                    code="invoice_not_editable",
                    param=locked[0],
                )
        changes = self._invoice_terms(params, current)
        updated = self._update("invoices", current, changes, request, self._now())
        return self._ok("invoices", updated, params.expand())

    def _delete_invoice_route(self, request: Request) -> Response:
        self._query(request, ())
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "draft":
            raise stripe_error(
                400,
                "You can only delete draft invoices. Finalized invoices can be voided instead.",
                code="invoice_not_editable",
            )
        self._delete_draft(current, request, self._now())
        return Response(200, {"id": current["id"], "object": "invoice", "deleted": True})

    def _delete_draft(self, invoice: Record, request: Request | None, now: int) -> None:
        self.collections["invoices"].remove(invoice["id"])
        for line in (invoice.get("lines") or {}).get("data") or []:
            item_id = line.get("invoice_item")
            if item_id:
                self.collections["invoiceitems"].remove(item_id)
        self._emit("invoice.deleted", invoice, request, now)

    def _invoice_lines(self, request: Request) -> Response:
        params = self._query(request, {"limit", "starting_after", "ending_before", "expand"})
        invoice = self._get("invoices", request.params["id"])
        lines = list((invoice.get("lines") or {}).get("data") or [])
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        ids = [line.get("id") for line in lines]
        after, before = params.text("starting_after"), params.text("ending_before")
        start, end = 0, len(lines)
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor is not None and cursor not in ids:
                raise stripe_error(400, f"No such line item: '{cursor}'", code="resource_missing", param=param)
        if after is not None:
            start = ids.index(after) + 1
        if before is not None:
            end = ids.index(before)
            start = max(start, end - limit)
        page = lines[start : start + limit]
        more = (start + limit < end) if before is None else start > 0
        body = {
            "object": "list",
            "data": page,
            "has_more": more,
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        return Response(200, body)

    def _finalize_invoice(self, request: Request) -> Response:
        params = self._form(request, {"auto_advance", "expand"})
        auto_advance = params.boolean("auto_advance")
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "draft":
            raise stripe_error(
                400,
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
            )
        finalized = self._finalize(current, request, self._now(), auto_advance)
        return self._ok("invoices", finalized, params.expand())

    def _finalize(self, invoice: Record, request: Request | None, now: int, auto_advance: bool | None) -> Record:
        changes: dict[str, Any] = {
            "status": "open",
            "number": self._next_number(invoice),
            "effective_at": now,
            "ending_balance": 0,
            "status_transitions": {**(invoice.get("status_transitions") or {}), "finalized_at": now},
        }
        if auto_advance is not None:
            changes["auto_advance"] = auto_advance
        if invoice.get("collection_method") == "send_invoice" and invoice.get("due_date") is None:
            changes["due_date"] = now + DAY_S * int(invoice.get("days_until_due") or 0)
        finalized = {**invoice, **changes}
        self.store("invoices", finalized)
        self._emit("invoice.finalized", finalized, request, now)
        if int(finalized.get("amount_due") or 0) == 0:  # nothing to collect: Stripe marks it paid
            return self._pay(finalized, out_of_band=False, request=request, now=now)
        return finalized

    def _next_number(self, invoice: Record) -> str:
        if self._invoice_numbers is None:
            self._invoice_numbers = {}
            for record in self.collections["invoices"]:
                number = record.get("number") or ""
                prefix, _, sequence = number.rpartition("-")
                if prefix and sequence.isdigit():
                    self._invoice_numbers[prefix] = max(self._invoice_numbers.get(prefix, 0), int(sequence))
        customer = self.collections["customers"].get(invoice.get("customer")) or {}
        prefix = customer.get("invoice_prefix") or str(invoice.get("customer", "SANDBOX"))[-8:].upper()
        sequence = self._invoice_numbers.get(prefix, 0) + 1
        self._invoice_numbers[prefix] = sequence
        return f"{prefix}-{sequence:04d}"

    def _pay_invoice(self, request: Request) -> Response:
        params = self._form(
            request,
            {"expand", "forgive", "mandate", "off_session", "paid_out_of_band", "payment_method", "source"},
        )
        out_of_band = bool(params.boolean("paid_out_of_band"))
        current = self._get("invoices", request.params["id"])
        now = self._now()
        status = current.get("status")
        if status == "paid":
            raise stripe_error(400, "Invoice is already paid", code="invoice_already_paid")
        if status == "void":
            raise stripe_error(400, "This invoice has been voided and can no longer be paid.", code="invoice_not_open")
        if status == "draft":  # Stripe finalizes a draft before attempting payment
            current = self._finalize(current, request, now, None)
            if current.get("status") == "paid":
                return self._ok("invoices", current, params.expand())
        paid = self._pay(current, out_of_band=out_of_band, request=request, now=now)
        return self._ok("invoices", paid, params.expand())

    def _pay(self, invoice: Record, *, out_of_band: bool, request: Request | None, now: int) -> Record:
        """Collects `amount_remaining` (with a charge unless paid out of band); the invoice becomes paid."""
        remaining = int(invoice.get("amount_remaining") or 0)
        changes: dict[str, Any] = {
            "status": "paid",
            "paid": True,
            "paid_out_of_band": out_of_band,
            "amount_paid": int(invoice.get("amount_paid") or 0) + remaining,
            "amount_remaining": 0,
            "status_transitions": {**(invoice.get("status_transitions") or {}), "paid_at": now},
        }
        charge = None
        if remaining > 0 and not out_of_band:
            charge = self._charge_for(invoice, remaining, now)
            self.store("charges", charge)
            self._emit("charge.succeeded", charge, request, now)
            changes.update(
                charge=charge["id"],
                payment_intent=charge["payment_intent"],
                attempted=True,
                attempt_count=int(invoice.get("attempt_count") or 0) + 1,
            )
        paid = {**invoice, **changes}
        self.store("invoices", paid)
        self._emit("invoice.paid", paid, request, now)
        if charge is not None:
            self._emit("invoice.payment_succeeded", paid, request, now)
        return paid

    def _charge_for(self, invoice: Record, amount: int, now: int) -> Record:
        customer = self.collections["customers"].get(invoice.get("customer")) or {}
        charge_id = self.new_id("charges")
        return {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": self.new_id("txn"),
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": customer.get("email"),
                "name": customer.get("name"),
                "phone": None,
            },
            "captured": True,
            "created": now,
            "currency": invoice.get("currency"),
            "customer": invoice.get("customer"),
            "description": f"Payment for Invoice {invoice.get('number') or invoice['id']}",
            "disputed": False,
            "failure_code": None,
            "failure_message": None,
            "invoice": invoice["id"],
            "livemode": False,
            "metadata": {},
            "outcome": {
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": True,
            "payment_intent": self.new_id("pi"),
            "payment_method": self.new_id("pm"),
            "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}, "type": "card"},
            "receipt_email": customer.get("email"),
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        }

    def _void_invoice(self, request: Request) -> Response:
        params = self._form(request, {"expand"})
        current = self._get("invoices", request.params["id"])
        if current.get("status") not in ("open", "uncollectible"):
            raise stripe_error(
                400,
                f"You can only void open or uncollectible invoices; this invoice is {current.get('status')}.",
                code="invoice_not_open" if current.get("status") == "draft" else None,
            )
        voided = self._transition(current, "void", "invoice.voided", request, self._now())
        return self._ok("invoices", voided, params.expand())

    def _mark_uncollectible(self, request: Request) -> Response:
        params = self._form(request, {"expand"})
        current = self._get("invoices", request.params["id"])
        if current.get("status") != "open":
            raise stripe_error(
                400, f"You can only mark open invoices as uncollectible; this one is {current.get('status')}."
            )
        marked = self._transition(current, "uncollectible", "invoice.marked_uncollectible", request, self._now())
        return self._ok("invoices", marked, params.expand())

    def _transition(self, invoice: Record, status: str, event_type: str, request: Request | None, now: int) -> Record:
        stamp = {"void": "voided_at", "uncollectible": "marked_uncollectible_at"}[status]
        changed = {
            **invoice,
            "status": status,
            "status_transitions": {**(invoice.get("status_transitions") or {}), stamp: now},
        }
        self.store("invoices", changed)
        self._emit(event_type, changed, request, now)
        return changed

    # -- charges --------------------------------------------------------------------------------------
    def _list_charges(self, request: Request) -> Response:
        params = self._query(request, LIST_PARAMS | {"customer", "payment_intent", "transfer_group"})
        customer, intent = params.text("customer"), params.text("payment_intent")
        group = params.text("transfer_group")

        def keep(record: Record) -> bool:
            return (
                (customer is None or record.get("customer") == customer)
                and (intent is None or record.get("payment_intent") == intent)
                and (group is None or record.get("transfer_group") == group)
            )

        return self._list(params, "charges", keep, "/v1/charges")

    def _update_charge(self, request: Request) -> Response:
        params = self._form(
            request,
            {"customer", "description", "expand", "fraud_details", "metadata", "receipt_email", "shipping"},
        )
        current = self._get("charges", request.params["id"])
        changes: dict[str, Any] = {}
        if params.has("description"):
            changes["description"] = params.nullable_text("description")
        if params.has("receipt_email"):
            changes["receipt_email"] = params.nullable_text("receipt_email")
        if params.has("customer"):
            customer_id = params.text("customer") or ""
            self._live_customer(customer_id)
            if current.get("customer") and current.get("customer") != customer_id:
                raise _bad("A charge's customer can only be set when the charge has none.", "customer")
            changes["customer"] = customer_id
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(current.get("metadata") or {}, metadata)
        updated = self._update("charges", current, changes, request, self._now())
        return self._ok("charges", updated, params.expand())

    # -- events ---------------------------------------------------------------------------------------
    def _list_events(self, request: Request) -> Response:
        params = self._query(request, LIST_PARAMS | {"type", "types", "delivery_success"})
        single = params.text("type")
        many = params.data.get("types")
        if single is not None and many is not None:
            raise _bad("You may only specify one of these parameters: type, types.", "types")
        patterns = [single] if single is not None else (many if isinstance(many, list) else [many] if many else [])
        if len(patterns) > 20:
            raise _bad("You can specify at most 20 event types.", "types")
        patterns = [str(p) for p in patterns]
        params.boolean("delivery_success")

        def keep(record: Record) -> bool:
            return not patterns or any(fnmatch.fnmatchcase(record.get("type", ""), p) for p in patterns)

        oldest = self._now() - EVENT_WINDOW_S
        return self._list(params, "events", keep, "/v1/events", oldest=oldest)
