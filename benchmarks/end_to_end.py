"""End to end at a million records: `integration_sync` full, `reconciliation`, then `integration_sync` again after
1 % of the records changed at the vendors, on one sandbox dataset (issue 14).

A dataset at `--scale` 100,000 companies holds ~1,040,000 records over nine streams. It is served by one
`integration-sandbox serve` process (unthrottled; its memory and CPU are reported apart and not counted). One
fresh Dagster home (the quickstart's SQLite instance) and one fresh DuckDB warehouse serve the whole sequence:

    integration_sync (full: fresh home and warehouse)  ->  reconciliation
    ->  POST /__sandbox__/mutate on every stream (edits 1 % of its records, `--changed`)
    ->  integration_sync (incremental: the same home and warehouse)

Each job runs the code location's own job, as users load it: a fresh interpreter, started in an empty folder
with the README's environment (`*_BASE_URL`, the sandbox's credentials, `DAGSTER_HOME`, `WAREHOUSE_URL`;
nothing else of the caller's), calls `defs.resolve_job_def(job).execute_in_process(...)`, so every step runs
in that one process, one after the other.

Figures per run: wall seconds of the whole process (start to exit) and of the run (RUN_START to RUN_SUCCESS in
the instance's event log); each step's seconds (STEP_START to STEP_SUCCESS / STEP_FAILURE, from the event log);
the sum over the nine source steps and over the canonical steps (every other step of `integration_sync`: the
six canonical assets and `ops/review_queue`, with their checks); records/s of the canonical layer, which is

    rows of the nine raw tables after the run (`raw.*`, what a full rebuild reads)
    / the summed seconds of the canonical steps;

and the peak resident set of each step. Peak per step: the worker attaches a success and a failure hook to the
job; each hook reads the process's high-water mark (`VmHWM` of /proc/self/status) and then resets it by
writing "5" to /proc/self/clear_refs, so each step's figure is the peak from the end of the step before it (or
the run's start) to its own end. The worker first checks that the reset works on this kernel (a 256 MB block,
freed, must leave the mark); where it does not, a thread samples `VmRSS` every 50 ms instead (`--memory
sampling` forces that). The incremental run is compared with the full one (wall, run, canonical seconds).

    .venv/bin/python benchmarks/end_to_end.py                       # ~1.04 M records (long: see BENCHMARKS.md)
    .venv/bin/python benchmarks/end_to_end.py --scale 10000         # ~104,000 records, a quick look
    .venv/bin/python benchmarks/end_to_end.py --scale 10000 --markdown --json end_to_end.json

Targets (issue 14, at 1,000,000 records; printed beside the figures, as information at any scale): canonical
layer >= 10,000 input records/s on a full build; the whole `integration_sync` under 300 s in process; peak
memory under 2 GB in every step; the incremental `integration_sync` at most 10 % of the full one (wall).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h
from benchmarks._harness import figure_text as _num

TARGET_CANONICAL_RPS = 10_000  # input records/s of the canonical layer, full build
TARGET_SYNC_S = 300.0  # the whole integration_sync, in process
TARGET_STEP_PEAK_MB = 2048  # in every step
TARGET_INCREMENTAL_SHARE = 0.10  # incremental / full, wall
TARGET_RECORDS = 1_000_000  # the targets are about a dataset this large
SEQUENCE = (  # (name, job) in the order they run
    ("full", "integration_sync"),
    ("reconciliation", "reconciliation"),
    ("incremental", "integration_sync"),
)
WORKER_MARK = '{"worker"'
NONE = "-"


# -- the worker: one job, in process, with the peak resident set of each step -----------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _clear_refs() -> None:
    """Resets this process's `VmHWM` to its current resident set (Linux: "5" > /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def clear_refs_resets_peak() -> bool:
    """Whether writing "5" to /proc/self/clear_refs resets `VmHWM` here: a 256 MB block is touched and freed,
    which must leave the high-water mark, then the reset must bring it back down to the resident set."""
    block = b"\x01" * (256 << 20)
    del block
    raised = _status_kb("VmHWM")
    try:
        _clear_refs()
    except OSError:
        return False
    return _status_kb("VmHWM") < raised - (128 << 10)


class StepPeaks:
    """The peak resident set of this process in consecutive windows (one per step), in MB.

    `clear_refs`: the kernel's own high-water mark, reset at each window's end. `sampling`: a thread reads
    `VmRSS` every 50 ms and keeps the largest since the window's start (it misses peaks shorter than that).
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.windows: dict[str, float] = {}
        self.starts: dict[str, float] = {}  # the resident set as each window began (what earlier ones left)
        self._start_mb = round(_status_kb("VmRSS") / 1024, 1)
        self._peak_kb = _status_kb("VmRSS")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if method == "sampling":
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            rss = _status_kb("VmRSS")
            with self._lock:
                self._peak_kb = max(self._peak_kb, rss)

    def close(self, name: str) -> float:
        """Records the peak of the window that ends now under `name`, and starts the next window."""
        if self.method == "clear_refs":
            peak_kb = _status_kb("VmHWM")
            _clear_refs()
        else:
            rss = _status_kb("VmRSS")
            with self._lock:
                peak_kb, self._peak_kb = max(self._peak_kb, rss), rss
        self.windows[name] = max(self.windows.get(name, 0.0), round(peak_kb / 1024, 1))  # a retried step: max
        self.starts.setdefault(name, self._start_mb)
        self._start_mb = round(_status_kb("VmRSS") / 1024, 1)
        return self.windows[name]

    def stop(self) -> None:
        self._stop.set()


def worker(job_name: str, memory: str) -> dict[str, Any]:
    method = "sampling" if memory == "sampling" or not clear_refs_resets_peak() else "clear_refs"
    if memory == "clear_refs" and method != "clear_refs":
        raise SystemExit("--memory clear_refs: writing 5 to /proc/self/clear_refs does not reset VmHWM here")
    peaks = StepPeaks(method)
    from dagster import DagsterInstance, HookContext, failure_hook, success_hook

    from integration_assets.definitions import defs

    @success_hook(name="end_to_end_step_peak_success")
    def step_succeeded(context: HookContext) -> None:
        peaks.close(context.step_key)

    @failure_hook(name="end_to_end_step_peak_failure")
    def step_failed(context: HookContext) -> None:
        peaks.close(context.step_key)

    job = defs.resolve_job_def(job_name).with_hooks({step_succeeded, step_failed})
    load_peak = peaks.close("(load)")  # interpreter, imports, the code location
    started = time.perf_counter()
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    execute_s = time.perf_counter() - started
    after = peaks.close("(after the last step)")
    peaks.stop()
    steps = {k: v for k, v in peaks.windows.items() if not k.startswith("(")}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "worker": job_name,
        "success": result.success,
        "run_id": result.run_id,
        "execute_s": round(execute_s, 2),
        "memory_method": method,
        "step_peak_mb": steps,
        "step_start_rss_mb": {k: peaks.starts[k] for k in steps},
        "load_peak_mb": load_peak,
        "after_steps_peak_mb": after,
        "process_peak_mb": max(peaks.windows.values()),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


# -- the parent: dataset, sandbox, the sequence ---------------------------------------------------------------
def source_steps() -> set[str]:
    from integration_assets.systems import CATALOG

    return {"__".join(stream.asset_key.path) for stream in CATALOG.streams}


def raw_rows(warehouse: Path) -> dict[str, int]:
    """Rows of each of the nine raw tables (what the canonical layer reads on a full build)."""
    import duckdb

    from integration_assets.systems import CATALOG

    if not warehouse.exists():  # the run failed before it made one
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return {
            s.raw_table: connection.execute(f"SELECT count(*) FROM {s.raw_table}").fetchone()[0]
            for s in CATALOG.streams
        }


def mutate(urls: dict[str, str], manifest: dict[str, Any], share: float, seed: int) -> dict[str, int]:
    """Edits `share` of each stream's records at the sandbox (`POST /__sandbox__/mutate`, edits only, at least
    one per stream); returns the records changed per stream."""
    import requests

    from integration_assets.systems import CATALOG

    changed = {}
    for stream in CATALOG.streams:
        served = manifest["counts"][f"{stream.vendor}/{stream.object_type}"]
        order = {"object_type": stream.object_type, "count": max(1, round(served * share)), "seed": seed}
        reply = requests.post(f"{urls[stream.vendor]}/__sandbox__/mutate", json=order, timeout=120)
        reply.raise_for_status()
        changed[stream.key] = len(reply.json()["changed"])
    return changed


def worker_result(log: Path) -> dict[str, Any]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(WORKER_MARK)]
    return json.loads(lines[-1]) if lines else {}


def measure(name: str, job: str, place: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Runs one job in a fresh worker process and reads back what it and the event log recorded."""
    command = [h.PYTHON, str(Path(__file__).resolve()), "--worker", job, "--memory", args.memory]
    log = place["root"] / f"{name}.log"
    load1 = round(os.getloadavg()[0], 2)
    run = h.run_command(command, env=place["env"], cwd=place["cwd"], log=log, timeout=args.timeout)
    figures = h.run_figures(place["home"], run.started_at, run.ended_at)
    inner = worker_result(log)
    step_s = figures.get("step_s", {})
    peaks, starts = inner.get("step_peak_mb", {}), inner.get("step_start_rss_mb", {})
    sources = source_steps()
    result: dict[str, Any] = {
        "run": name,
        "job": job,
        "success": bool(figures.get("success")) and bool(inner.get("success")) and run.returncode == 0,
        "returncode": run.returncode,
        "timed_out": run.returncode is None,
        "load1_before": load1,
        "wall_s": run.wall_s,  # the worker process, start to exit
        "execute_s": inner.get("execute_s"),  # execute_in_process, as the worker timed it
        "run_s": figures.get("run_s"),  # RUN_START to RUN_SUCCESS / RUN_FAILURE
        "cpu_s": inner.get("cpu_s"),
        "memory_method": inner.get("memory_method"),
        "steps": {
            step: {"seconds": seconds, "peak_mb": peaks.get(step), "start_rss_mb": starts.get(step)}
            for step, seconds in step_s.items()  # in the order they ended
        },
        "step_peak_mb_max": max(peaks.values(), default=None),
        "load_peak_mb": inner.get("load_peak_mb"),
        "process_peak_mb": inner.get("process_peak_mb"),
        "failed_steps": figures.get("failed_steps"),
        "checks": figures.get("checks"),
        "checks_failed": figures.get("checks_failed"),
        "failed_checks": figures.get("failed_checks"),
        "run_id": figures.get("run_id"),
    }
    if job == "integration_sync":
        rows = raw_rows(place["warehouse"])
        canonical_s = sum(s for step, s in step_s.items() if step not in sources)
        result["sources_s"] = round(sum(s for step, s in step_s.items() if step in sources), 2)
        result["canonical_s"] = round(canonical_s, 2)
        result["raw_rows"] = sum(rows.values())
        result["raw_rows_per_table"] = rows
        result["canonical_records_per_s"] = round(result["raw_rows"] / canonical_s) if canonical_s else None
    h.emit(result)
    if not result["success"]:
        print(f"  {name} ({job}): FAILED (exit {run.returncode}); the end of its log:", file=sys.stderr)
        print(h.log_tail(log), file=sys.stderr)
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def targets(runs: dict[str, dict[str, Any]], records: int) -> list[dict[str, Any]]:
    """The Done-when targets of issue 14 beside the figures of this run (about 1,000,000 records)."""
    full, incremental = runs.get("full", {}), runs.get("incremental", {})
    step_peaks = [r.get("step_peak_mb_max") for r in runs.values() if r.get("step_peak_mb_max") is not None]
    share = _ratio(incremental.get("wall_s"), full.get("wall_s"))
    rows = [
        ("canonical layer, full build, input records/s", full.get("canonical_records_per_s"),
         f">= {TARGET_CANONICAL_RPS:,}", lambda v: v >= TARGET_CANONICAL_RPS),
        ("whole integration_sync (full), wall s", full.get("wall_s"),
         f"< {TARGET_SYNC_S:.0f}", lambda v: v < TARGET_SYNC_S),
        ("peak memory of any step, MB", max(step_peaks, default=None),
         f"< {TARGET_STEP_PEAK_MB:,}", lambda v: v < TARGET_STEP_PEAK_MB),
        ("incremental / full integration_sync, wall", share,
         f"<= {TARGET_INCREMENTAL_SHARE:.0%}", lambda v: v <= TARGET_INCREMENTAL_SHARE),
    ]  # fmt: skip
    return [
        {
            "target": what,
            "figure": value,
            "wanted": wanted,
            "met": None if value is None else bool(test(value)),
            "at_target_size": records >= TARGET_RECORDS,
        }
        for what, value, wanted, test in rows
    ]


def _peak(step: dict[str, Any]) -> str:
    """A step's peak resident set, and in brackets the resident set it started from."""
    return f"{_num(step.get('peak_mb'))} ({_num(step.get('start_rss_mb'))})" if step.get("peak_mb") else NONE


def _checks(run: dict[str, Any]) -> str:
    """Checks evaluated, and the failed ones by name."""
    failed = run.get("failed_checks") or []
    return f"{_num(run.get('checks'))}" + (f", failed: {', '.join(failed)}" if failed else ", none failed")


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list]]]:
    """(title, header, rows) of every table of the report."""
    runs = report["runs"]
    full, incremental, recon = runs.get("full", {}), runs.get("incremental", {}), runs.get("reconciliation", {})
    name = f"scale {report['scale']:,}: {report['records']:,} records"
    out = []
    header = [
        "step (as they ran)",
        "full s",
        "full peak MB (at start)",
        "incremental s",
        "incremental peak MB (at start)",
    ]
    rows = []
    for step in list(full.get("steps", {})) + [
        s for s in incremental.get("steps", {}) if s not in full.get("steps", {})
    ]:
        a, b = full.get("steps", {}).get(step, {}), incremental.get("steps", {}).get(step, {})
        rows.append([f"`{step}`", _num(a.get("seconds"), 2), _peak(a), _num(b.get("seconds"), 2), _peak(b)])
    for label, key, digits in (
        ("nine source steps, sum", "sources_s", 2),
        ("canonical steps, sum", "canonical_s", 2),
        ("canonical records/s (raw rows ÷ canonical s)", "canonical_records_per_s", 0),
        ("run (RUN_START → RUN_SUCCESS)", "run_s", 2),
        ("whole process, wall", "wall_s", 2),
        ("peak of the process (any window)", "process_peak_mb", 1),
    ):
        rows.append([f"**{label}**", _num(full.get(key), digits), "", _num(incremental.get(key), digits), ""])
    out.append((f"{name}; `integration_sync` in process, full then incremental (1 % changed), per step", header, rows))
    header = ["job", "ok", "wall s", "run s", "sum of step s", "peak MB per step (max)", "process peak MB", "checks"]
    rows = []
    for label, r in (("`integration_sync` (full)", full), ("`reconciliation`", recon),
                     ("`integration_sync` (incremental)", incremental)):  # fmt: skip
        if r:
            rows.append([label, "yes" if r["success"] else "**no**", _num(r["wall_s"], 2), _num(r.get("run_s"), 2),
                         _num(round(sum(s["seconds"] for s in r["steps"].values()), 2), 2),
                         _num(r.get("step_peak_mb_max")), _num(r.get("process_peak_mb")), _checks(r)])  # fmt: skip
    out.append((f"{name}; each job", header, rows))
    header = ["target (issue 14, at 1,000,000 records)", "this run", "wanted", "met here"]
    rows = [
        [t["target"], _num(t["figure"], 3 if isinstance(t["figure"], float) and t["figure"] < 1 else 1), t["wanted"],
         NONE if t["met"] is None else ("yes" if t["met"] else "no")]
        for t in report["targets"]
    ]  # fmt: skip
    small = "" if report["records"] >= TARGET_RECORDS else " (information only: this dataset is smaller)"
    out.append((f"{name}; the Done-when targets{small}", header, rows))
    return out


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--scale", type=int, default=100_000, help="CRM companies (~10.4 records each in all)")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--defect-rate", type=float, default=0.0)
    options.add_argument("--changed", type=float, default=0.01, help="share of each stream's records edited")
    options.add_argument(
        "--memory",
        choices=("auto", "clear_refs", "sampling"),
        default="auto",
        help="peak per step: VmHWM reset through /proc/self/clear_refs (auto: where it works) or 50 ms sampling",
    )
    options.add_argument("--timeout", type=float, default=3600, help="seconds before a job's process is killed")
    options.add_argument("--json", help="write the figures to this file")
    options.add_argument("--markdown", action="store_true", help="print the tables as markdown, ready to paste")
    options.add_argument("--keep", help="work in this (new) folder and keep it: logs, home, warehouse, dataset")
    options.add_argument("--worker", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.memory)), flush=True)
        return 0

    from benchmarks.user_path import render

    machine_before = h.machine()
    state, began_at = h.git_state(), datetime.now(UTC)
    print(f"{state}; {machine_before['cpus']} cores, load average {machine_before['load1']} at start")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_end_to_end_"))
    work.mkdir(parents=True, exist_ok=bool(not args.keep))
    started = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}
    try:
        began = time.perf_counter()
        manifest = h.generate(work / "data", scale=args.scale, seed=args.seed, defect_rate=args.defect_rate)
        records = sum(manifest["counts"].values())
        h.emit({"setup": "dataset", "scale": args.scale, "records": records,
                "generate_s": round(time.perf_counter() - began, 1)})  # fmt: skip
        with h.sandbox(work / "data") as server:
            root = work / "runs"
            (root / "cwd").mkdir(parents=True)  # empty: no .env is read
            home, warehouse = h.dagster_home(root / "dagster_home"), root / "warehouse.duckdb"
            place = {"root": root, "cwd": root / "cwd", "home": home, "warehouse": warehouse,
                     "env": h.code_location_env(server.urls, home, warehouse)}  # fmt: skip
            sandbox_cpu = server.cpu_s()
            changed: dict[str, int] = {}
            for name, job in SEQUENCE:
                if name == "incremental":
                    changed = mutate(server.urls, manifest, args.changed, args.seed)
                    h.emit({"setup": "mutate", "changed": sum(changed.values()), "per_stream": changed})
                runs[name] = measure(name, job, place, args)
            sandbox = {**server.memory_mb(), "cpu_s": round(server.cpu_s() - sandbox_cpu, 1)}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    took_s = time.perf_counter() - started
    full, incremental = runs.get("full", {}), runs.get("incremental", {})
    report = {
        "benchmark": "end_to_end",
        "code": state,
        "started_utc": began_at.strftime("%Y-%m-%d %H:%M"),
        "scale": args.scale,
        "records": records,
        "changed": sum(changed.values()),
        "incremental_share": {
            key: _ratio(incremental.get(key), full.get(key)) for key in ("wall_s", "run_s", "canonical_s")
        },
        "targets": targets(runs, records),
        "sandbox": sandbox,  # not counted in any figure above
        "machine_before": machine_before,
        "machine_after": h.machine(),
        "seconds": round(took_s, 1),
        "runs": runs,
    }
    h.emit({k: v for k, v in report.items() if k != "runs"})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")

    recon = runs.get("reconciliation", {})
    share = report["incremental_share"]
    print()
    print(
        f"Taken on {state}, {report['started_utc']} UTC, {machine_before['cpus']} cores; load average "
        f"{machine_before['load1']} at start, {report['machine_after']['load1']} at the end; peak memory per step "
        f"by {full.get('memory_method')}; this benchmark took {took_s / 60:.1f} min."
    )
    print(
        f"scale {args.scale:,}: {records:,} records served, {full.get('raw_rows', 0):,} raw rows after the full sync.\n"
        f"  integration_sync full: {_num(full.get('wall_s'), 1)} s wall (run {_num(full.get('run_s'), 1)} s): "
        f"sources {_num(full.get('sources_s'), 1)} s, canonical {_num(full.get('canonical_s'), 1)} s = "
        f"{_num(full.get('canonical_records_per_s'))} raw records/s; peak per step up to "
        f"{_num(full.get('step_peak_mb_max'))} MB\n"
        f"  reconciliation: {_num(recon.get('wall_s'), 1)} s wall (run {_num(recon.get('run_s'), 1)} s), peak "
        f"{_num(recon.get('step_peak_mb_max'))} MB in its step\n"
        f"  integration_sync incremental ({report['changed']:,} records edited): "
        f"{_num(incremental.get('wall_s'), 1)} s wall (canonical {_num(incremental.get('canonical_s'), 1)} s) = "
        f"{_num(share['wall_s'], 3)} of the full "
        f"run's wall, {_num(share['canonical_s'], 3)} of its canonical seconds\n"
        f"  sandbox (not counted): peak {sandbox.get('peak_rss_mb')} MB, {sandbox.get('cpu_s')} CPU s"
    )
    for title, header, rows in tables(report):
        print()
        print(render(title, header, rows, args.markdown))
    return 0 if runs and all(r["success"] for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
