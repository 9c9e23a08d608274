"""Proactive pacing: spend a vendor's request budget evenly instead of bouncing off its 429s."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Budget(Protocol):
    """What ApiClient asks of a budget: this module's in-process one, or the Redis one of `shared_pacing` that
    every worker of an account shares."""

    waited_s: float

    @property
    def limit(self) -> int | None: ...

    def acquire(self) -> None: ...

    def observe(self, limit: int | None, window_s: float | None, remaining: int | None) -> None: ...

    def hold(self, seconds: float) -> None: ...


class RequestBudget:
    """At most `limit` requests in any rolling `window_s`, with a safety margin.

    Starts from configuration; `observe` tightens or widens it from the limits the vendor announces in its
    headers, and `hold` keeps every request back after a 429 for as long as the vendor asked.
    """

    def __init__(
        self,
        limit: int | None,
        window_s: float = 1.0,
        *,
        margin: float = 0.985,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window_s, self.margin = window_s, margin
        self._limit = limit
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._hold_until = 0.0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    @property
    def limit(self) -> int | None:
        return self._limit

    def _allowed(self) -> int | None:
        return None if self._limit is None else max(1, int(self._limit * self.margin))

    def acquire(self) -> None:
        """Blocks until a request may be sent within the budget."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._hold_until - now
                allowed = self._allowed()
                if wait <= 0 and allowed is not None:
                    while self._sent and self._sent[0] <= now - self.window_s:
                        self._sent.popleft()
                    if len(self._sent) >= allowed:
                        wait = self._sent[0] + self.window_s - now
                if wait <= 0:
                    self._sent.append(now)
                    return
            self.waited_s += wait
            self._sleep(wait)

    def observe(self, limit: int | None, window_s: float | None, remaining: int | None) -> None:
        """Takes in what the vendor says about its limit on a response."""
        with self._lock:
            if limit and window_s:
                self._limit, self.window_s = limit, window_s
            if remaining == 0 and self._sent:
                # The vendor counts a request we do not see (another client, a retry): wait a window out.
                self._hold_until = max(self._hold_until, self._clock() + min(self.window_s, 1.0))

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)
