"""HubSpot property values: every value a string; dates, numbers and text compared each as its kind."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from typing import Any

from integration_sandbox.kit import parse_iso
from integration_sandbox.store import Record
from integration_sandbox.vendors.hubspot.definitions import DATE_PROPERTIES, NUMBER_PROPERTIES

_EPOCH_MS = re.compile(r"-?\d+")
_ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?")
_TOKEN_SPLIT = re.compile(r"[\s,;:/()\[\]<>\"']+")


def iso(ts: float) -> str:
    """HubSpot's timestamp format: 2026-03-04T05:06:07.123Z."""
    ms = round(ts * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=1 << 17)
def instant_ms(text: str | None) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp, a date, or epoch-ms text; None if it is none of them."""
    if text is None:
        return None
    text = str(text).strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    moment = parse_iso(text) if _ISO_LIKE.fullmatch(text) else None
    return None if moment is None else int(moment.timestamp() * 1000)


def as_number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def as_string(value: Any) -> str:
    """HubSpot stores every property value as a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def is_true(text: str | None) -> bool:
    return (text or "").strip().lower() == "true"


def name_list(values: Iterable[str]) -> list[str]:
    """Repeated and comma-joined parameter values, in order, without repeats."""
    seen: dict[str, None] = {}
    for value in values:
        for name in str(value).split(","):
            if name.strip():
                seen.setdefault(name.strip(), None)
    return list(seen)


def kind_of(name: str) -> str:
    return "date" if name in DATE_PROPERTIES else "number" if name in NUMBER_PROPERTIES else "auto"


def comparable(kind: str, value: Any) -> tuple[int, Any] | None:
    """A comparable form of a property value: (0, number) for dates and numbers, (1, text) for text."""
    if value is None:
        return None
    if kind == "date":
        moment = instant_ms(value)
        return (0, moment) if moment is not None else (1, str(value).casefold())
    number = as_number(value)
    if number is not None:
        return (0, number)
    if kind == "auto":
        moment = instant_ms(value)
        if moment is not None:
            return (0, moment)
    return (1, str(value).casefold())


def tokens_of(value: str) -> set[str]:
    text = value.casefold()
    found = {t for t in _TOKEN_SPLIT.split(text) if t}
    for token in list(found):
        found.update(p for p in re.split(r"[@.\-_+]", token) if p)
    found.add(text)
    return found


def value_of(record: Record, name: str) -> Any:
    props = record.get("properties") or {}
    value = props.get(name)
    if value is None and name == "hs_object_id":
        return record["id"]
    return value


def between(value: tuple | None, low: tuple | None, high: tuple | None) -> bool:
    if value is None or low is None or high is None or not value[0] == low[0] == high[0]:
        return False
    return low <= value <= high
