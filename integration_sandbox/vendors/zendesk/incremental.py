"""Zendesk incremental exports, by cursor and by time: the timeline, less the changes younger than the lag.

Exports are for admins only (`ZendeskCore.authenticate`); their cursor stays valid after `end_of_stream`.
"""

from __future__ import annotations

import time

from integration_sandbox.kit import Request, Response
from integration_sandbox.vendors.zendesk.core import ZendeskCore
from integration_sandbox.vendors.zendesk.definitions import MAX_EXPORT_PAGE, listed
from integration_sandbox.vendors.zendesk.errors import invalid_value
from integration_sandbox.vendors.zendesk.pagination import decode_cursor, encode_cursor, int_param


class Exports(ZendeskCore):
    def _export_setup(self, request: Request, object_type: str):
        per_page = int_param(request.arg("per_page"), MAX_EXPORT_PAGE, "per_page")
        per_page = max(1, min(per_page, MAX_EXPORT_PAGE))
        deleted_out = object_type == "tickets" and (request.arg("exclude_deleted") or "").lower() == "true"
        keep = listed(object_type) if deleted_out else None
        now = time.time()
        return per_page, keep, now, now - self.settings.incremental_lag_s

    @staticmethod
    def _start_time(request: Request, now: float) -> int:
        raw = request.arg("start_time")
        if raw is None or raw == "":
            raise invalid_value("start_time is required: use start_time=<unix seconds>, or cursor=<after_cursor>")
        try:
            start = int(float(raw))
        except ValueError:
            raise invalid_value(f"start_time must be a unix timestamp in seconds, got {raw!r}") from None
        if start > now:
            raise invalid_value("start_time cannot be in the future")
        return start

    def _export_by_cursor(self, request: Request, object_type: str) -> Response:
        per_page, keep, now, cutoff = self._export_setup(request, object_type)
        cursor = request.arg("cursor")
        if cursor:
            decoded = decode_cursor(cursor)
            if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, int) for v in decoded)):
                raise invalid_value("cursor is invalid")
            after = (decoded[0], decoded[1])
        else:
            after = (self._start_time(request, now), -1)
        records, last, ended = self._collection(object_type).export(after, per_page, cutoff, keep)
        after_cursor = encode_cursor(list(last))
        path = f"/api/v2/incremental/{object_type}/cursor.json"
        extra = {
            "after_url": self._link(request, path, cursor=after_cursor, start_time=None),
            "after_cursor": after_cursor,
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": ended,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))

    def _export_by_time(self, request: Request, object_type: str) -> Response:
        per_page, keep, now, cutoff = self._export_setup(request, object_type)
        start = self._start_time(request, now)
        records, _, ended = self._collection(object_type).export(
            (start, -1), per_page, cutoff, keep, whole_seconds=True
        )
        end_time = records[-1]["generated_timestamp"] if records else start
        path = f"/api/v2/incremental/{object_type}.json"
        extra = {
            "next_page": self._link(request, path, start_time=end_time),
            "previous_page": None,
            "count": len(records),
            "end_of_stream": ended,
            "end_time": end_time,
        }
        return Response(200, self._envelope(object_type, records, object_type, extra))
