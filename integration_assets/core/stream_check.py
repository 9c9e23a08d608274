"""The checks of one source stream, run inside the step that lands it.

A check that runs in its own step pays for a process and re-reads what the sync just had in hand. Each
`StreamCheck` is evaluated in the stream's own step instead, right after the sync, from what the sync
measured (`Landed`); it may also watch each chunk as it commits (the contract validates rows as they land).
Executed alone (from the UI, without a sync), `landed` is None and the check judges the whole table.

The checks are declared by the slices that own them (monitoring, reconciliation) and handed to the source
assets by the code location, so this floor knows their shape and nothing of their logic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dagster import AssetCheckResult, DagsterInstance

from integration_assets.core.catalog import LiveTotal, StreamSpec
from integration_assets.core.http import ApiClient
from integration_assets.core.sync import SyncReport
from integration_assets.core.warehouse import RawRow, Warehouse

__all__ = ["ChunkWatcher", "Landed", "StreamCheck", "StreamCheckRun"]

ChunkWatcher = Callable[[Sequence[RawRow]], None]


@dataclass(frozen=True)
class Landed:
    """What this step's sync did and reported for the stream."""

    report: SyncReport
    metadata: Mapping[str, Any]  # the materialization's metadata (live_rows, the observed shape, …)


@dataclass(frozen=True)
class StreamCheckRun:
    """Everything a check may read, in the step that runs it."""

    stream: StreamSpec
    warehouse: Warehouse
    instance: DagsterInstance
    run_id: str
    client: Callable[[], ApiClient]  # a fresh client under the stream's connector grant (close it)
    live_total: LiveTotal
    landed: Landed | None  # None: the check runs alone, without a sync in this step
    watched: Any = None  # what this check's watcher gathered while the chunks landed


class StreamCheck(ABC):
    """One named check of a source stream (`contract`, `drift`, `volume`, `complete_against_vendor`)."""

    name: ClassVar[str]
    blocking: ClassVar[bool] = False

    def applies(self, stream: StreamSpec) -> bool:
        return True

    @abstractmethod
    def description(self, stream: StreamSpec) -> str: ...

    def watch(self, stream: StreamSpec, warehouse: Warehouse) -> tuple[ChunkWatcher, Callable[[], Any]] | None:
        """A callback seeing each committed chunk, and what it gathered; None when the check needs neither."""
        return None

    def skip_reason(self, run: StreamCheckRun) -> str | None:
        """Why the check is not evaluated in this run (it shows as skipped in the UI), or None: evaluate it."""
        return None

    @abstractmethod
    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult: ...
