"""A rolling-window request limiter, the way the vendors count (HubSpot's 'ten_secondly_rolling')."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    window_s: float
    retry_after_s: float  # when a request would next be allowed; 0 when allowed


class RollingWindow:
    """At most `limit` requests in any `window_s` seconds, per key (a credential, usually)."""

    def __init__(self, limit: int, window_s: float, clock=time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> Verdict:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                wait = hits[0] + self.window_s - now
                return Verdict(False, self.limit, 0, self.window_s, max(wait, 0.0))
            hits.append(now)
            return Verdict(True, self.limit, self.limit - len(hits), self.window_s, 0.0)
