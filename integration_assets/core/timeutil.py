"""Vendor timestamps to epoch milliseconds: the one clock versions are compared on."""

from __future__ import annotations

import time
from datetime import datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_to_ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)  # Python 3.11 reads the Z itself
    except ValueError:
        return None
