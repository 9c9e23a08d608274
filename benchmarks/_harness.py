"""What the benchmark scripts share: datasets, the sandbox as its own process, workers measured in subprocesses.

Every side of a comparison runs in a fresh Python process started by `run_worker`. The worker reports its own
peak resident set (`VmHWM` of /proc/self/status, which starts afresh at exec) and the parent reaps it with
`os.wait4` for its CPU seconds. (`ru_maxrss` of a child is not used: Linux carries the parent's high-water
mark over the fork into the child's figure.) The sandbox is another process (`integration-sandbox serve`),
started as users start it; its memory and CPU time are read from /proc and reported apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from integration_sandbox.generator import FILES

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HUBSPOT_TOKEN = "pat-sandbox"


def emit(figures: dict[str, Any]) -> None:
    """One JSON line of figures on stdout."""
    print(json.dumps(figures, sort_keys=False), flush=True)


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "python": sys.version.split()[0],
    }


# -- datasets -----------------------------------------------------------------------------------------------
def generate(folder: Path, *, scale: int, seed: int) -> dict:
    """`integration-sandbox generate` in its own process (the generator's memory stays out of ours)."""
    command = [PYTHON, "-m", "integration_sandbox.cli", "generate", "--out", str(folder)]
    command += ["--seed", str(seed), "--scale", str(scale)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return json.loads((folder / "manifest.json").read_text())


def proc_memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set of a process, from /proc, in MB."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures["rss_mb" if name == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    return figures


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def contacts_only(folder: Path, records: int) -> int:
    """`_contacts_only` in its own process, so the parent never holds the dataset in memory."""
    command = [PYTHON, __file__, "contacts-only", str(folder), str(records)]
    subprocess.run(command, check=True, cwd=ROOT)
    return records


def _contacts_only(folder: Path, records: int) -> int:
    """Keeps the first `records` live HubSpot contacts and empties the other eight files.

    Listings then return exactly `records` contacts, whatever the reader asks about archived ones, so both
    sides of a comparison must land exactly that many distinct ids.
    """
    path = folder / "hubspot" / "contacts.json"
    live = [record for record in json.loads(path.read_text()) if not record.get("archived")]
    if len(live) < records:
        raise SystemExit(f"the dataset holds {len(live)} live contacts, fewer than {records}: raise --scale")
    path.write_text(json.dumps(live[:records], separators=(",", ":")))
    for name in FILES:
        if name != "hubspot/contacts":
            (folder / f"{name}.json").write_text("[]")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["counts"] = {name: (records if name == "hubspot/contacts" else 0) for name in FILES}
    manifest["archived"] = {"hubspot/contacts": 0}
    manifest["defects"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return records


# -- the sandbox ---------------------------------------------------------------------------------------------
@dataclass
class SandboxProcess:
    process: subprocess.Popen
    urls: dict[str, str]

    def memory_mb(self) -> dict[str, float]:
        """Current and peak resident set of the sandbox process."""
        return proc_memory_mb(self.process.pid)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.process.pid)

    def stats(self, vendor: str = "hubspot") -> dict[str, int]:
        return requests.get(f"{self.urls[vendor]}/__sandbox__/stats", timeout=10).json()[vendor]

    def reset_stats(self) -> None:
        requests.delete(f"{self.urls['hubspot']}/__sandbox__/stats", timeout=10).raise_for_status()


@contextmanager
def sandbox(data: Path, faults: Path | None = None) -> Iterator[SandboxProcess]:
    """`integration-sandbox serve` on free ports, in its own process, until the block ends."""
    command = [PYTHON, "-m", "integration_sandbox.cli", "serve", "--data", str(data)]
    command += ["--hubspot-port", "0", "--stripe-port", "0", "--zendesk-port", "0"]
    if faults is not None:
        command += ["--faults", str(faults)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        urls = dict(process.stdout.readline().split() for _ in range(3))
        yield SandboxProcess(process, urls)
    finally:
        process.terminate()
        process.wait()


def walk_hubspot(base_url: str, object_type: str, properties: str, archived: bool = False) -> int:
    """Reads a listing once with plain `requests`: fills the sandbox's rendered-page cache for this view, so
    whichever side runs first does not pay for the server's first rendering of each record."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {HUBSPOT_TOKEN}"
    params = {"limit": "100", "properties": properties, "archived": str(archived).lower()}
    count = 0
    while True:
        body = http.get(f"{base_url}/crm/v3/objects/{object_type}", params=params, timeout=60).json()
        count += len(body["results"])
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if after is None:
            return count
        params["after"] = after


# -- workers -------------------------------------------------------------------------------------------------
@dataclass
class WorkerRun:
    result: dict[str, Any]  # the worker's last stdout line, parsed (with its own `peak_rss_mb`)
    process_s: float  # wall time of the whole process, interpreter start to exit
    cpu_s: float  # user + system CPU seconds of that process (and any child it waited for)


def run_worker(arguments: list[str], *, wrap: list[str] | None = None, env: dict[str, str] | None = None) -> WorkerRun:
    """Runs `python <arguments>` (optionally under `wrap`, e.g. py-spy) and measures it.

    The worker prints its figures as one JSON line, last on stdout, with `peak_rss_mb` from
    `proc_memory_mb()` taken as it ends; its stderr passes through.
    """
    command = [*(wrap or []), PYTHON, *arguments]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"worker {arguments} exited {process.returncode}:\n{output[-2000:]}")
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return WorkerRun(json.loads(lines[-1]), round(elapsed, 2), round(usage.ru_utime + usage.ru_stime, 2))


def scratch(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder on the same disk as /tmp, removed at the end."""
    return tempfile.TemporaryDirectory(prefix=prefix)


if __name__ == "__main__":  # helpers that must not run in the measuring parent's memory
    if sys.argv[1:2] == ["contacts-only"]:
        _contacts_only(Path(sys.argv[2]), int(sys.argv[3]))
