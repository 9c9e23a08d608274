"""HubSpot CRM search: filter groups, sorts, a text query, and the 10,000-result window of one query."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.hubspot.core import HubSpotCore
from integration_sandbox.vendors.hubspot.definitions import SEARCH_MAX, SEARCH_WINDOW, SEARCHABLE
from integration_sandbox.vendors.hubspot.values import as_string, between, comparable, kind_of, tokens_of, value_of

MAX_FILTER_GROUPS, MAX_FILTERS = 5, 18
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


class Search(HubSpotCore):
    def _search(self, object_type: str, request: Request) -> Response:
        body = self._body(request)
        limit = self._int(request, body.get("limit"), "limit", 10)
        offset = self._int(request, body.get("after"), "after", 0)
        if not 0 < limit <= SEARCH_MAX:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_MAX}.")
        if offset + limit > SEARCH_WINDOW:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Search results are limited to {SEARCH_WINDOW} results per query: after ({offset}) plus "
                f"limit ({limit}) reaches past {SEARCH_WINDOW}. Narrow the filters, e.g. restart from the "
                "last modification date seen.",
            )
        ids = self._matches(object_type, body, request)
        collection = self.collections[object_type]
        page = [collection.get(i) for i in ids[offset : offset + limit]]
        view, shape = self._view(object_type, body.get("properties") or [], [])
        out = b'{"total":%d,"results":' % len(ids) + self.render_list(object_type, page, view, shape)
        if offset + limit < len(ids):
            out += b',"paging":{"next":{"after":"%d"}}' % (offset + limit)
        return Response(200, out + b"}")

    def _matches(self, object_type: str, body: dict, request: Request) -> list[str]:
        """Ids of the live records a search body selects, in order (cached until the collection changes)."""
        groups, sorts, query = body.get("filterGroups") or [], body.get("sorts") or [], body.get("query")
        key = (object_type, json.dumps([groups, sorts, query], sort_keys=True, default=str))
        collection = self.collections[object_type]
        cached = self._searches.get(key)
        if cached is not None and cached[0] == collection.version:
            self._searches.move_to_end(key)
            return cached[1]
        keep = self._criteria(object_type, groups, query, request)
        found = [r for r in collection if not r.get("archived") and keep(r)]
        for name, descending in reversed(self._sorts(sorts, request)):
            kind = kind_of(name)
            present = [r for r in found if value_of(r, name) is not None]
            missing = [r for r in found if value_of(r, name) is None]
            present.sort(key=lambda r, n=name, k=kind: comparable(k, value_of(r, n)), reverse=descending)
            found = present + missing
        ids = [r["id"] for r in found]
        self._searches[key] = (collection.version, ids)
        while len(self._searches) > 32:
            self._searches.popitem(last=False)
        return ids

    def _criteria(self, object_type: str, groups: Any, query: Any, request: Request) -> Callable[[Record], bool]:
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise self._fail(request, 400, "VALIDATION_ERROR", "filterGroups must be a list of objects.")
        filters = [g.get("filters") or [] for g in groups]
        if len(groups) > MAX_FILTER_GROUPS or sum(len(f) for f in filters) > MAX_FILTERS:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"A search may have at most {MAX_FILTER_GROUPS} filterGroups and {MAX_FILTERS} filters.",
            )
        compiled = [[self._filter(f, request) for f in group] for group in filters]
        text = str(query).strip().casefold() if query else ""
        searchable = SEARCHABLE[object_type]

        def keep(record: Record) -> bool:
            if text and not any(
                text in str(value_of(record, n) or "").casefold() for n in (*searchable, "hs_object_id")
            ):
                return False
            return not compiled or any(all(test(record) for test in group) for group in compiled)

        return keep

    def _filter(self, spec: Any, request: Request) -> Callable[[Record], bool]:
        if not isinstance(spec, dict) or not spec.get("propertyName"):
            raise self._fail(request, 400, "VALIDATION_ERROR", "Each filter needs a propertyName and an operator.")
        name, operator = spec["propertyName"], str(spec.get("operator") or "EQ").upper()
        if operator not in OPERATORS:
            raise self._fail(
                request,
                400,
                "VALIDATION_ERROR",
                f"Invalid operator {operator!r}: use one of {', '.join(sorted(OPERATORS))}.",
            )
        kind = kind_of(name)

        def typed(value: Any) -> tuple[int, Any] | None:
            return comparable(kind, value)

        if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            wanted = operator == "HAS_PROPERTY"
            return lambda r: (value_of(r, name) not in (None, "")) == wanted
        if operator in ("IN", "NOT_IN"):
            values = spec.get("values")
            if not isinstance(values, list):
                raise self._fail(request, 400, "VALIDATION_ERROR", f"{operator} needs a list of values.")
            options = {typed(as_string(v)) for v in values}
            inside = operator == "IN"
            return lambda r: (typed(value_of(r, name)) in options) == inside
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = as_string(spec.get("value")).casefold()
            wanted = operator == "CONTAINS_TOKEN"

            def contains(record: Record) -> bool:
                value = value_of(record, name)
                if value is None:
                    return False
                return any(fnmatch.fnmatchcase(token, pattern) for token in tokens_of(str(value)))

            return lambda r: contains(r) == wanted
        if "value" not in spec:
            raise self._fail(request, 400, "VALIDATION_ERROR", f"Operator {operator} needs a value.")
        low = typed(as_string(spec.get("value")))
        if operator == "BETWEEN":
            high = typed(as_string(spec.get("highValue")))
            return lambda r: between(typed(value_of(r, name)), low, high)
        if operator in ("EQ", "NEQ"):
            wanted = operator == "EQ"
            return lambda r: (typed(value_of(r, name)) == low) == wanted
        compare = {
            "LT": lambda a: a < low,
            "LTE": lambda a: a <= low,
            "GT": lambda a: a > low,
            "GTE": lambda a: a >= low,
        }[operator]

        def ordered(record: Record) -> bool:
            value = typed(value_of(record, name))
            return value is not None and value[0] == low[0] and compare(value)

        return ordered

    def _sorts(self, sorts: Any, request: Request) -> list[tuple[str, bool]]:
        """`sorts` as ["prop", "-prop"] or [{"propertyName", "direction"}] → [(name, descending)]."""
        if not isinstance(sorts, list):
            raise self._fail(request, 400, "VALIDATION_ERROR", "sorts must be a list.")
        result = []
        for sort in sorts:
            if isinstance(sort, str) and sort.strip():
                text = sort.strip()
                if text.startswith("{"):  # the SDK's `sorts: list[str]` invites JSON-encoded sort objects
                    try:
                        sort = json.loads(text)
                    except ValueError:
                        sort = text
                if isinstance(sort, str):
                    result.append((text.lstrip("-+"), text.startswith("-")))
                    continue
            if isinstance(sort, dict) and sort.get("propertyName"):
                descending = str(sort.get("direction") or "ASCENDING").upper().startswith("DESC")
                result.append((sort["propertyName"], descending))
            else:
                raise self._fail(request, 400, "VALIDATION_ERROR", f"Invalid sort {sort!r}.")
        return result
