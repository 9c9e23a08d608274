"""Stripe search (`/v1/<resource>/search`): the query language's subset connectors use, and its pages."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from integration_sandbox.kit import Request, Response, dumps
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import StripeCore
from integration_sandbox.vendors.stripe.errors import bad
from integration_sandbox.vendors.stripe.listing import scan
from integration_sandbox.vendors.stripe.params import query_params

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
            raise bad(_PARSE_HELP, "query")
        name = "metadata" if found["key"] is not None else found["field"]
        kind = fields.get(name)
        if kind is None:
            raise bad(
                f"Field `{name}` is an unsupported search field for resource `{object_type}`. See "
                f"http://stripe.com/docs/search#query-fields-for-{object_type} for a list of supported "
                "fields.",
                "query",
            )
        op = found["op"]
        if op in (">", "<", ">=", "<=") and kind != "number":
            raise bad(f"Field `{name}` does not support the `{op}` operator.", "query")
        if found["number"] is not None:
            value: str | float | None = float(found["number"]) if kind == "number" else found["number"]
        elif found["null"] is not None:
            value = None
        else:
            raw = found["single"] if found["single"] is not None else found["double"]
            value = re.sub(r"\\(.)", r"\1", raw)
        if op == "~" and (value is None or len(str(value)) < 3):
            raise bad("Substring matching (`~`) requires a value of at least 3 characters.", "query")
        clauses.append(Clause(name, found["key"], op, value, bool(found["neg"])))
        position = found.end()
        if position == len(text):
            break
        join = _JOIN.match(text, position)
        if not join or join.end() == len(text):
            raise bad(_PARSE_HELP, "query")
        joiners.add((join.group(1) or "AND").upper())
        position = join.end()
    if len(joiners) > 1:
        raise bad("You cannot combine `AND` and `OR` in the same search query.", "query")
    if len(clauses) > 10:
        raise bad("Search queries can contain at most 10 clauses.", "query")
    return (joiners.pop() if joiners else "AND"), clauses


class Search(StripeCore):
    def _search(self, request: Request, object_type: str) -> Response:
        params = query_params(request, {"query", "limit", "page", "expand"})
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
                raise bad(f"Invalid page: {page}", "page")
            start = position
        kinds = SEARCH_FIELDS[object_type]
        test = all if combinator == "AND" else any
        # Stripe's search index trails writes ("up to a minute"): a record younger than the lag is not found yet
        indexed_before = self.clock() - self.settings.search_lag_s

        def keep(record: Record) -> bool:
            if self.settings.search_lag_s and (record.get("created") or 0) > indexed_before:
                return False
            return not record.get("deleted") and test(c.matches(record, kinds[c.field]) for c in clauses)

        records, more = scan(collection, start, len(collection), limit, keep)
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
