"""Which keyed writes of one delivery the vendor answered as a replay of another request's stored answer.

Two runs delivering the same plan at once send the same idempotency keys: the vendor makes the record once and
answers the second request from the first one's stored answer (Stripe: `Idempotent-Replayed: true`). The
write-back runner watches each delivery (`watching_replays`), a vendor's writes note each keyed write
(`note_keyed_write`), and the sync log then counts a delivery that made nothing new as a replay, not a second
"created". A context variable, so the flows' code in between needs no change and concurrent deliveries in
other threads do not mix; outside a watched delivery a note is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Replays", "note_keyed_write", "watching_replays"]


@dataclass
class Replays:
    """The keyed writes one delivery sent, and those the vendor answered from an earlier request's stored answer."""

    sent: list[str] = field(default_factory=list)  # idempotency keys, in order
    replayed: list[str] = field(default_factory=list)  # of those, the ones that made nothing new

    @property
    def only_replays(self) -> bool:
        """Every write of the delivery was a replay of someone else's: the delivery itself made nothing."""
        return bool(self.sent) and len(self.replayed) == len(self.sent)


_WATCHING: ContextVar[Replays | None] = ContextVar("keyed_write_replays", default=None)


@contextmanager
def watching_replays() -> Iterator[Replays]:
    """Notes, while the block runs, which keyed writes the vendor replayed."""
    replays = Replays()
    token = _WATCHING.set(replays)
    try:
        yield replays
    finally:
        _WATCHING.reset(token)


def note_keyed_write(key: str, *, replayed: bool) -> None:
    """One keyed write sent, and whether the vendor answered it from another request's stored answer."""
    replays = _WATCHING.get()
    if replays is not None:
        replays.sent.append(key)
        if replayed:
            replays.replayed.append(key)
