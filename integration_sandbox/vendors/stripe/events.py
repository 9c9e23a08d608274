"""Stripe events (`/v1/events`): how a connector sees changes, 30 days back; `StripeCore._emit` writes them."""

from __future__ import annotations

import fnmatch

from integration_sandbox.kit import Request, Response
from integration_sandbox.store import Record
from integration_sandbox.vendors.stripe.core import DAY_S, StripeCore
from integration_sandbox.vendors.stripe.errors import bad
from integration_sandbox.vendors.stripe.listing import LIST_PARAMS
from integration_sandbox.vendors.stripe.params import query_params

EVENT_WINDOW_S = 30 * DAY_S  # /v1/events only reaches 30 days back


class Events(StripeCore):
    def _list_events(self, request: Request) -> Response:
        params = query_params(request, LIST_PARAMS | {"type", "types", "delivery_success"})
        single = params.text("type")
        many = params.data.get("types")
        if single is not None and many is not None:
            raise bad("You may only specify one of these parameters: type, types.", "types")
        patterns = [single] if single is not None else (many if isinstance(many, list) else [many] if many else [])
        if len(patterns) > 20:
            raise bad("You can specify at most 20 event types.", "types")
        patterns = [str(p) for p in patterns]
        params.boolean("delivery_success")

        def keep(record: Record) -> bool:
            return not patterns or any(fnmatch.fnmatchcase(record.get("type", ""), p) for p in patterns)

        oldest = self._now() - EVENT_WINDOW_S
        return self._list(params, "events", keep, "/v1/events", oldest=oldest)
