"""The drills' processes: a command in its own session (killed with all it started), and waiting on a probe."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

__all__ = ["process_group", "wait_for"]

T = TypeVar("T")


@contextmanager
def process_group(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A process in its own session, its output in `log`, SIGKILLed at the end with everything it started
    (code servers, run workers, steps)."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_for(
    what: str, probe: Callable[[], T | None], seconds: float, every: float = 0.25, log: Path | None = None
) -> T:
    """`probe()` once it is truthy; fails naming `what` after `seconds`, with the end of `log` when given."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n{log.read_text()[-3000:]}" if log is not None and log.exists() else ""
            raise AssertionError(f"{what}: not within {seconds:g} s{tail}")
        time.sleep(every)
