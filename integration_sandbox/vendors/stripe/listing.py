"""Stripe lists: newest first, `created[...]` ranges and cursors, found by position in the listing order."""

from __future__ import annotations

from collections.abc import Callable

from integration_sandbox.store import Collection, Record
from integration_sandbox.vendors.stripe.errors import bad
from integration_sandbox.vendors.stripe.params import Params, parse_integer

LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})


def created_bounds(params: Params) -> tuple[int | None, int | None]:
    """`created=<t>` or `created[gt|gte|lt|lte]` as inclusive bounds (low, high)."""
    value = params.data.get("created")
    if value is None:
        return None, None
    if not isinstance(value, dict):
        moment = parse_integer(value, "created")
        return moment, moment
    low: int | None = None
    high: int | None = None
    for op, raw in value.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise bad(f"Received unknown parameter: created[{op}]", f"created[{op}]")
        moment = parse_integer(raw, f"created[{op}]")
        if moment is None:
            continue
        if op in ("gt", "gte"):
            bound = moment + 1 if op == "gt" else moment
            low = bound if low is None else max(low, bound)
        else:
            bound = moment - 1 if op == "lt" else moment
            high = bound if high is None else min(high, bound)
    return low, high


def scan(
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


def scan_back(
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
