"""The user's path: `integration_sync`, `reconciliation` and `write_back` run as `dagster job execute` runs them
(the Dagster UI and the schedules launch runs the same way: the job's own executor, the code location's
default), against the same jobs executed in process, side by side in one run of this script.

For each dataset (the quickstart's demo dataset by default: `generate(seed=1, scale=200, defect_rate=0.05)`,
the defaults of `integration_assets/quickstart.py`; `--scale 2000` for a larger one) this script generates the
dataset and runs, in this order, on each of two paths:

    integration_sync (full: fresh warehouse)  ->  integration_sync (no-op: nothing changed at the vendors)
    ->  reconciliation  ->  write_back

- user path: `dagster job execute -m integration_assets.definitions -j <job>` (no execution config: the
  executor `INTEGRATION_EXECUTOR` names, the default unless `--executor` is given);
- in process: `python -c <IN_PROCESS>`: a fresh interpreter that imports the definitions and calls
  `defs.resolve_job_def(job).execute_in_process(instance=DagsterInstance.get())`.

Each path has its own sandbox (`integration-sandbox serve` on free ports, its own process: write-back writes
into the vendors), its own fresh Dagster home (the quickstart's SQLite instance, telemetry off) and its own
fresh DuckDB warehouse; the code location's environment is the README's (`*_BASE_URL`, the sandbox's default
credentials, `WAREHOUSE_URL`; nothing else of the caller's `HUBSPOT_*`, `INTEGRATION_*`... is passed on; the
configuration is the packaged defaults). The two paths take turns going first, job by job. Commands run in an
empty folder, so no `.env` is read.

Figures per run: wall seconds of the whole command (process start to exit), the run's own seconds (RUN_START
to RUN_SUCCESS / RUN_FAILURE in the instance's event log), what came before the run (interpreter, imports,
loading the code location) and between RUN_START and the first step (the executor's start), the sum of the
steps' seconds (STEP_START to STEP_SUCCESS / STEP_FAILURE per step, over attempts), the seconds the executor
took to start the steps (STEP_WORKER_STARTING to STEP_START, multiprocess executors only), the number of steps,
success, and the ratio user path / in process (wall and run). For the no-op sync: its wall and run seconds as
a share of the full sync's, the requests each source made (its materialization's `api_calls` metadata), and
every request of the run in `ops.api_calls` (sources and checks).

    .venv/bin/python benchmarks/user_path.py                          # demo dataset
    .venv/bin/python benchmarks/user_path.py --scale 2000
    .venv/bin/python benchmarks/user_path.py --scale 200 --scale 2000 --markdown --json user_path.json

Targets (issue 11): on the demo dataset the user path's `integration_sync` takes at most 1.5x its in-process
wall time and under 60 s, `reconciliation` at most 2x; a no-op sync costs at most 15 % of a full one (wall),
its sources making at most 2 requests per stream.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h
from benchmarks._harness import figure_text as _num

DEMO = {"seed": 1, "scale": 200, "defect_rate": 0.05}  # the quickstart's dataset (integration_assets/quickstart.py)
SEQUENCE = (  # (job, what the run is), in the order each path runs them
    ("integration_sync", "full"),
    ("integration_sync", "no-op"),
    ("reconciliation", ""),
    ("write_back", ""),
)
PATHS = ("user_path", "in_process")
PATH_LABEL = {"user_path": "user path (`dagster job execute`)", "in_process": "in process (`execute_in_process`)"}
IN_PROCESS = (
    "import sys\n"
    "from dagster import DagsterInstance\n"
    "from integration_assets.definitions import defs\n"
    "with DagsterInstance.get() as instance:\n"
    "    result = defs.resolve_job_def(sys.argv[1]).execute_in_process(instance=instance, raise_on_error=False)\n"
    "sys.exit(0 if result.success else 1)\n"
)
TARGET_RATIO = {"integration_sync": 1.5, "reconciliation": 2.0}  # user path / in process, wall, demo dataset
TARGET_SYNC_S = 60.0  # the user path's full integration_sync on the demo dataset
TARGET_NOOP_SHARE = 0.15
TARGET_NOOP_REQUESTS = 2
NONE, TIMES = "-", "\u00d7"  # a figure the run did not give; "times" in the ratios


def command(path: str, job: str) -> list[str]:
    if path == "user_path":
        return [h.DAGSTER, "job", "execute", "-m", h.CODE_LOCATION, "-j", job]
    return [h.PYTHON, "-c", IN_PROCESS, job]


def api_calls(warehouse: Path, run_id: str | None) -> dict[str, int]:
    """Requests of a run recorded in the warehouse's `ops.api_calls`, per system (sources and checks)."""
    import duckdb

    if run_id is None or not warehouse.exists():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        known = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' AND table_name = 'api_calls'"
        ).fetchone()[0]
        if not known:
            return {}
        rows = connection.execute(
            "SELECT system, count(*) FROM ops.api_calls WHERE run_id = ? GROUP BY system ORDER BY system", [run_id]
        ).fetchall()
    return dict(rows)


def free_after_timeout(home: Path, since: float) -> None:
    """A run killed at the timeout keeps its pool slots (no daemon watches `dagster job execute`): mark it
    failed and free them, so that this path's next jobs do not wait on them forever."""
    from dagster import DagsterInstance, RunsFilter

    from integration_assets.core.dagster_adapter import free_pool_slots, report_run_failed

    with DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records(RunsFilter(created_after=datetime.fromtimestamp(since - 1, tz=UTC))):
            if not record.dagster_run.is_finished:
                report_run_failed(instance, record.dagster_run)
            free_pool_slots(instance, record.dagster_run.run_id)


def measure_scale(folder: Path, dataset: dict[str, Any], *, first: int, executor: str | None, timeout: float):
    """Generates the dataset, then runs the sequence on both paths, taking turns. Returns the runs' figures."""
    data = folder / "data"
    began = time.perf_counter()
    manifest = h.generate(data, **dataset)
    records = sum(manifest["counts"].values())
    print(f"dataset: scale {dataset['scale']}, {records:,} records, generated in {time.perf_counter() - began:.1f} s")
    extra = {"INTEGRATION_EXECUTOR": executor} if executor else {}
    runs: list[dict[str, Any]] = []
    with h.sandbox(data) as sandbox_a, h.sandbox(data) as sandbox_b:
        places = {}
        for path, sandbox in zip(PATHS, (sandbox_a, sandbox_b), strict=True):
            root = folder / path
            root.mkdir()
            home, warehouse = h.dagster_home(root / "dagster_home"), root / "warehouse.duckdb"
            places[path] = (root, home, warehouse, h.code_location_env(sandbox.urls, home, warehouse, **extra))
        for index, (job, kind) in enumerate(SEQUENCE):
            order = PATHS if (index + first) % 2 == 0 else PATHS[::-1]
            for turn, path in enumerate(order, start=1):
                root, home, warehouse, env = places[path]
                name = f"{index}_{job}{'_' + kind if kind else ''}_{path}"
                load1 = round(os.getloadavg()[0], 2)
                run = h.run_command(command(path, job), env=env, cwd=root, log=root / f"{name}.log", timeout=timeout)
                if run.returncode is None:
                    free_after_timeout(home, run.started_at)
                figures = h.run_figures(home, run.started_at, run.ended_at)
                calls = api_calls(warehouse, figures.get("run_id"))
                result = {
                    "scale": dataset["scale"],
                    "records": records,
                    "job": job,
                    "kind": kind,
                    "path": path,
                    "turn": turn,
                    "wall_s": run.wall_s,
                    "returncode": run.returncode,
                    "timed_out": run.returncode is None,
                    "load1_before": load1,
                    **figures,
                    "api_calls_by_system": calls,
                    "api_calls_total": sum(calls.values()),
                }
                result["success"] = bool(figures.get("success")) and run.returncode == 0
                runs.append(result)
                h.emit(result)
                if not result["success"]:
                    print(f"  {name}: FAILED (exit {run.returncode}); the end of its log:", file=sys.stderr)
                    print(h.log_tail(run.log), file=sys.stderr)
    return records, runs


# -- the report ----------------------------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summarize(runs: list[dict[str, Any]], scale: int) -> dict[str, Any]:
    """Per job: the two paths and their ratios; the no-op sync against the full one on each path."""
    at = {(r["job"], r["kind"], r["path"]): r for r in runs if r["scale"] == scale}
    jobs = []
    for job, kind in SEQUENCE:
        user, inproc = at.get((job, kind, "user_path")), at.get((job, kind, "in_process"))
        if user is None or inproc is None:
            continue
        row = {
            "job": job,
            "kind": kind,
            "ratio_wall": _ratio(user["wall_s"], inproc["wall_s"]),
            "ratio_run": _ratio(user.get("run_s"), inproc.get("run_s")),
        }
        target = TARGET_RATIO.get(job) if kind != "no-op" and scale == DEMO["scale"] else None
        if target is not None:
            row["target_ratio"] = target
            row["target_met"] = bool(user["success"] and row["ratio_wall"] is not None and row["ratio_wall"] <= target)
            if job == "integration_sync":
                row["target_met"] = row["target_met"] and user["wall_s"] < TARGET_SYNC_S
        jobs.append(row)
    noop = {}
    for path in PATHS:
        full, again = at.get(("integration_sync", "full", path)), at.get(("integration_sync", "no-op", path))
        if full is None or again is None:
            continue
        per_stream = {stream: c["api_calls"] for stream, c in sorted(again.get("source_calls", {}).items())}
        share_wall = _ratio(again["wall_s"], full["wall_s"])
        noop[path] = {
            "share_wall": share_wall,
            "share_run": _ratio(again.get("run_s"), full.get("run_s")),
            "source_requests_per_stream": per_stream,
            "source_requests_max": max(per_stream.values(), default=None),
            "modes": sorted({c["mode"] for c in again.get("source_calls", {}).values()}),
            "requests_of_run": again["api_calls_total"],
            "requests_of_full_run": full["api_calls_total"],
        }
        noop[path]["target_met"] = bool(
            again["success"]
            and share_wall is not None
            and share_wall <= TARGET_NOOP_SHARE
            and per_stream
            and max(per_stream.values()) <= TARGET_NOOP_REQUESTS
        )
    return {"scale": scale, "jobs": jobs, "noop": noop}


def _yes(value: bool | None) -> str:
    return NONE if value is None else ("yes" if value else "**no**")


def tables(runs: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> list[tuple[str, list[str], list[list]]]:
    """(title, header, rows) of every table of the report."""
    out = []
    for summary in summaries:
        scale = summary["scale"]
        at = {(r["job"], r["kind"], r["path"]): r for r in runs if r["scale"] == scale}
        records = next(r["records"] for r in runs if r["scale"] == scale)
        name = "demo dataset (the quickstart's)" if scale == DEMO["scale"] else f"scale {scale:,}"
        header = [
            "job",
            "path",
            "ok",
            "steps",
            "wall s",
            "run s",
            "before run s",
            "run start → 1st step s",
            "sum of step s",
            "step launches s",
            "user/in-process wall",
            "user/in-process run",
            "target",
            "met",
        ]
        rows = []
        for job_row in summary["jobs"]:
            job, kind = job_row["job"], job_row["kind"]
            for path in PATHS:
                r = at[(job, kind, path)]
                user = path == "user_path"
                target = job_row.get("target_ratio")
                target_text = ""
                if user and target is not None:
                    target_text = f"≤ {target}{TIMES} wall"
                    if job == "integration_sync":
                        target_text += f", < {TARGET_SYNC_S:.0f} s"
                rows.append(
                    [
                        f"`{job}`" + (f" ({kind})" if kind else ""),
                        PATH_LABEL[path],
                        "yes" if r["success"] else "**no**",
                        _num(r.get("steps")),
                        _num(r["wall_s"], 2),
                        _num(r.get("run_s"), 2),
                        _num(r.get("before_run_s"), 2),
                        _num(r.get("first_step_after_s"), 2),
                        _num(r.get("step_s_sum"), 2),
                        _num(r.get("step_launch_s_sum"), 2) if r.get("step_launch_s_sum") else NONE,
                        f"{job_row['ratio_wall']}{TIMES}" if user and job_row["ratio_wall"] is not None else "",
                        f"{job_row['ratio_run']}{TIMES}" if user and job_row["ratio_run"] is not None else "",
                        target_text,
                        _yes(job_row.get("target_met")) if user and target is not None else "",
                    ]
                )
        out.append((f"{name}: {records:,} records; every job on both paths", header, rows))
        header = [
            "path",
            "full sync wall s / run s",
            "no-op wall s / run s",
            "no-op share wall / run",
            "source requests per stream (max)",
            "requests of the run, ops.api_calls (full run)",
            "target",
            "met",
        ]
        rows = []
        for path, noop in summary["noop"].items():
            full, again = at[("integration_sync", "full", path)], at[("integration_sync", "no-op", path)]
            per_stream = noop["source_requests_per_stream"]
            rows.append(
                [
                    PATH_LABEL[path],
                    f"{_num(full['wall_s'], 2)} / {_num(full.get('run_s'), 2)}",
                    f"{_num(again['wall_s'], 2)} / {_num(again.get('run_s'), 2)}",
                    f"{_pct(noop['share_wall'])} / {_pct(noop['share_run'])}",
                    f"{', '.join(str(v) for v in per_stream.values())} ({_num(noop['source_requests_max'])})",
                    f"{noop['requests_of_run']:,} ({noop['requests_of_full_run']:,})",
                    f"≤ {TARGET_NOOP_SHARE:.0%} wall, ≤ {TARGET_NOOP_REQUESTS} requests per stream",
                    _yes(noop["target_met"]),
                ]
            )
        streams = next(iter(summary["noop"].values()), {}).get("source_requests_per_stream", {})
        out.append(
            (
                f"{name}: no-op incremental `integration_sync` right after the full one "
                f"(streams in order: {', '.join(streams) or 'none reported'})",
                header,
                rows,
            )
        )
    return out


def _pct(value: float | None) -> str:
    return NONE if value is None else f"{value:.0%}"


def render(title: str, header: list[str], rows: list[list], markdown: bool) -> str:
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    plain = [[str(c).replace("`", "").replace("**", "") for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in plain) for i in range(len(header))]
    lines = [title]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in plain]
    return "\n".join(lines)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument(
        "--scale",
        type=int,
        action="append",
        help=f"companies to generate; repeat for several datasets (default: the demo dataset, {DEMO['scale']})",
    )
    options.add_argument("--seed", type=int, default=DEMO["seed"])
    options.add_argument("--defect-rate", type=float, default=DEMO["defect_rate"])
    options.add_argument(
        "--executor", help="INTEGRATION_EXECUTOR for the code location (default: unset, its default executor)"
    )
    options.add_argument("--timeout", type=float, default=1800, help="seconds before a command is killed")
    options.add_argument("--json", help="write the figures to this file")
    options.add_argument("--markdown", action="store_true", help="print the tables as markdown, ready to paste")
    options.add_argument("--keep", help="work in this (new) folder and keep it: logs, homes, warehouses")
    args = options.parse_args()

    scales = args.scale or [DEMO["scale"]]
    machine_before = h.machine()
    state, began_at = h.git_state(), datetime.now(UTC)
    print(
        f"{state}; {machine_before['cpus']} cores, load average {machine_before['load1']} (1 min) / "
        f"{machine_before['load5']} (5 min) at start; executor: {args.executor or 'the code location default'}"
    )
    warm = h.run_command(
        [h.PYTHON, "-c", f"import {h.CODE_LOCATION}"],
        env=dict(os.environ),
        cwd=h.ROOT,
        log=Path(os.devnull),
        timeout=300,
    )
    if warm.returncode != 0:
        print("the code location does not load: `python -c 'import integration_assets.definitions'` fails")
        return 2
    print(f"code location imports in {warm.wall_s} s (a warm-up, not measured)")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_user_path_"))
    work.mkdir(parents=True, exist_ok=bool(not args.keep))
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for index, scale in enumerate(scales):
            dataset = {"seed": args.seed, "scale": scale, "defect_rate": args.defect_rate}
            _, measured = measure_scale(
                work / f"scale_{scale}", dataset, first=index, executor=args.executor, timeout=args.timeout
            )
            runs += measured
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    took_s = time.perf_counter() - started
    machine_after = h.machine()
    summaries = [summarize(runs, scale) for scale in scales]
    report = {
        "benchmark": "user_path",
        "code": state,
        "started_utc": began_at.strftime("%Y-%m-%d %H:%M"),
        "executor": args.executor or "default",
        "machine_before": machine_before,
        "machine_after": machine_after,
        "seconds": round(took_s, 1),
        "summaries": summaries,
        "runs": runs,
    }
    h.emit({k: v for k, v in report.items() if k != "runs"})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(
        f"Taken on {state}, {report['started_utc']} UTC, {machine_before['cpus']} cores; load average "
        f"{machine_before['load1']} at start, {machine_after['load1']} at the end; executor: "
        f"{'INTEGRATION_EXECUTOR=' + args.executor if args.executor else 'the code location default'}; "
        f"this benchmark took {took_s / 60:.1f} min."
    )
    for title, header, rows in tables(runs, summaries):
        print()
        print(render(title, header, rows, args.markdown))
    return 0 if all(r["success"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
