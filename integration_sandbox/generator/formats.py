"""How the dataset is written: each vendor's timestamp and amount formats, and JSON arrays streamed to disk."""

from __future__ import annotations

import calendar
import json
import random
import time
from pathlib import Path
from typing import Any, TextIO

ANCHOR = "2026-10-01T00:00:00Z"
ANCHOR_S = calendar.timegm((2026, 10, 1, 0, 0, 0))
DAY = 86_400

FILES = (  # the dataset's files, vendor/object_type
    "hubspot/companies",
    "hubspot/contacts",
    "hubspot/deals",
    "stripe/customers",
    "stripe/invoices",
    "stripe/charges",
    "zendesk/organizations",
    "zendesk/users",
    "zendesk/tickets",
)


def iso_ms(ms: int) -> str:
    """HubSpot timestamp: 2026-03-04T05:06:07.123Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso_s(seconds: int) -> str:
    """Zendesk timestamp: 2026-03-04T05:06:07Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def decimal(minor: int, currency: str) -> str:
    """HubSpot amount string: 12500.00, or 150000 for zero-decimal JPY."""
    if currency == "JPY":
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def major(minor: int, currency: str) -> int | float:
    return minor if currency == "JPY" else round(minor / 100, 2)


def phone_number(r: random.Random, fmt: str, digits: int) -> str:
    number = fmt.format(*f"{r.randrange(10**digits):0{digits}d}")
    return number.replace(" ", "") if r.random() < 0.3 else number


class ArrayWriter:
    """Streams records into a JSON array: `[`, records separated by `,\\n`, `]`."""

    __slots__ = ("_file", "_sep", "count")

    def __init__(self, path: Path) -> None:
        self._file: TextIO = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)  # noqa: SIM115
        self._file.write("[")
        self._sep = ""
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self._file.write(self._sep + json.dumps(record, separators=(",", ":")))
        self._sep = ",\n"
        self.count += 1

    def close(self) -> None:
        self._file.write("]\n")
        self._file.close()
