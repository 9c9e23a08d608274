"""What earlier materializations of an asset reported, read back from the Dagster instance.

Drift and volume judge today against yesterday; the yesterdays live in the instance's event log (SQLite or
PostgreSQL alike), so the checks keep no state of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagster import AssetKey, DagsterInstance

__all__ = ["Materialization", "materializations"]

PAGE = 100


@dataclass(frozen=True)
class Materialization:
    run_id: str
    timestamp: float
    metadata: dict[str, Any]

    def number(self, name: str) -> float | None:
        """A numeric metadata entry as a plain number, None when it was not reported."""
        entry = self.metadata.get(name)
        value = getattr(entry, "value", entry)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def materializations(instance: DagsterInstance, key: AssetKey, max_pages: int = 20) -> Iterator[Materialization]:
    """The asset's materializations, newest first, paged lazily (callers stop when they have enough)."""
    cursor: str | None = None
    for _ in range(max_pages):
        result = instance.fetch_materializations(key, limit=PAGE, cursor=cursor)
        for record in result.records:
            materialization = record.asset_materialization
            if materialization is not None:
                yield Materialization(record.run_id, record.timestamp, dict(materialization.metadata))
        if not result.has_more:
            return
        cursor = result.cursor
