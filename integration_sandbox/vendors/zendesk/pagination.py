"""Zendesk lists: by cursor (`page[size]`, opaque `page[after]`/`page[before]`) or by offset up to 10,000."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from integration_sandbox.kit import Request, Response, VendorError
from integration_sandbox.vendors.zendesk.core import ZendeskCore
from integration_sandbox.vendors.zendesk.definitions import MAX_PAGE_SIZE, OFFSET_LIMIT, SINGULAR, iso, listed
from integration_sandbox.vendors.zendesk.errors import invalid_paging


class Lists(ZendeskCore):
    def _show(self, request: Request, object_type: str) -> Response:
        record = self._record(request, object_type)
        key = SINGULAR[object_type].encode()
        return Response(200, b'{"' + key + b'":' + self.render(object_type, record) + b"}")

    def _show_many(self, request: Request, object_type: str) -> Response:
        raw = [part for part in (request.arg("ids") or "").split(",") if part.strip()]
        if len(raw) > MAX_PAGE_SIZE:
            raise VendorError(
                400,
                {"error": "TooManyValues", "description": f"Too many values: maximum {MAX_PAGE_SIZE} ids"},
            )
        found = []
        for part in raw:
            try:
                record = self._reachable(object_type, int(part))
            except ValueError:
                continue
            if record is not None:
                found.append(record)
        extra = {"next_page": None, "previous_page": None, "count": len(found)}
        return Response(200, self._envelope(object_type, found, object_type, extra))

    def _count(self, request: Request, object_type: str) -> Response:
        value = self._collection(object_type).visible_count
        return Response(200, {"count": {"value": value, "refreshed_at": iso(time.time())}})

    def _list(self, request: Request, object_type: str) -> Response:
        if any(name.startswith("page[") for name in request.query):
            return self._list_by_cursor(request, object_type)
        return self._list_by_offset(request, object_type)

    def _list_by_cursor(self, request: Request, object_type: str) -> Response:
        size = int_param(request.arg("page[size]"), MAX_PAGE_SIZE, "page[size]")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise invalid_paging(f"page[size] must be between 1 and {MAX_PAGE_SIZE}")
        collection, keep = self._collection(object_type), listed(object_type)
        before = list_cursor(request.arg("page[before]"), "page[before]")
        after = list_cursor(request.arg("page[after]"), "page[after]")
        if before is not None:
            records, has_more = collection.scan_back(collection.index_past_key(before - 1), size, keep)
        else:
            start = collection.index_past_key(after) if after is not None else 0
            records, resume = collection.scan(start, size, keep)
            has_more = resume is not None
        after_cursor = encode_cursor({"o": "id", "v": records[-1]["id"]}) if records else None
        before_cursor = encode_cursor({"o": "id", "v": records[0]["id"]}) if records else None
        meta = {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor}
        links = {
            "next": self._link(request, **{"page[after]": after_cursor, "page[before]": None, "page[size]": size})
            if after_cursor
            else None,
            "prev": self._link(request, **{"page[before]": before_cursor, "page[after]": None, "page[size]": size})
            if before_cursor
            else None,
        }
        return Response(200, self._envelope(object_type, records, object_type, {"meta": meta, "links": links}))

    def _list_by_offset(self, request: Request, object_type: str) -> Response:
        page = int_param(request.arg("page"), 1, "page")
        per_page = min(int_param(request.arg("per_page"), MAX_PAGE_SIZE, "per_page"), MAX_PAGE_SIZE)
        if page < 1 or per_page < 1:
            raise invalid_paging("page and per_page must be positive")
        if page * per_page > OFFSET_LIMIT:
            raise invalid_paging(
                "Offset pagination is limited to the first 10,000 records (100 pages of 100). "
                "Use cursor pagination (page[size], page[after]) to fetch more."
            )
        collection, keep = self._collection(object_type), listed(object_type)
        offset = (page - 1) * per_page
        if collection.visible_count == len(collection):
            records, _ = collection.scan(offset, per_page)
        else:
            records = collection.scan(0, offset + per_page, keep)[0][offset:]
        count = collection.visible_count
        extra = {
            "next_page": self._link(request, page=page + 1, per_page=per_page)
            if offset + len(records) < count
            else None,
            "previous_page": self._link(request, page=page - 1, per_page=per_page) if page > 1 else None,
            "count": count,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))


def encode_cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def int_param(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_paging(f"{name} must be an integer, got {raw!r}") from None


def list_cursor(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    decoded = decode_cursor(raw)
    if not (isinstance(decoded, dict) and isinstance(decoded.get("v"), int)):
        raise invalid_paging(f"{name} is not a valid cursor")
    return decoded["v"]
