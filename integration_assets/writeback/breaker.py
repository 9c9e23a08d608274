"""A circuit breaker per destination: after N consecutive 5xx or timeouts, stop calling it for the rest of the
run and let the outbox hold the writes. The client has already retried each call with backoff, so N failed
calls in a row mean the destination is down, not unlucky; hammering it would only slow its recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

from integration_assets.core.errors import Category, IntegrationError

__all__ = ["CircuitBreaker"]

# What counts as "the destination is failing": server errors and timeouts, not refusals of one record.
TRIPPING = frozenset({Category.TRANSIENT})


@dataclass
class CircuitBreaker:
    failures_to_open: int
    _consecutive: dict[str, int] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)

    def is_open(self, system: str) -> bool:
        return system in self.opened

    def record_success(self, system: str) -> None:
        self._consecutive[system] = 0

    def record_failure(self, system: str, error: IntegrationError) -> None:
        if error.category not in TRIPPING:
            self._consecutive[system] = 0  # the destination answered: it is up
            return
        self._consecutive[system] = self._consecutive.get(system, 0) + 1
        if self._consecutive[system] >= self.failures_to_open:
            self.opened.add(system)
