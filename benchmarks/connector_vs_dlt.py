"""100,000 HubSpot contacts into DuckDB: this project's connector against dlt 1.31's `rest_api` source.

Both read the same unthrottled sandbox (its own process; one warm-up pass first renders every page, so
neither side pays for the server's first rendering) and write a fresh DuckDB file, each in its own process
so that its peak memory is its own:

- ours: `sync_stream` of `crm/contacts` (full refresh) through `HubSpotResource(...).client(...)` into a
  fresh `Warehouse`, as the Dagster asset does it;
- dlt:  `rest_api_source` with bearer auth, `crm/v3/objects/contacts?limit=100&properties=<ours>`, cursor
  paginator on `paging.next.after`, `data_selector: results`, primary key `id`, merge, parquet loader.

records/s = distinct ids landed / wall seconds of the whole load (client or pipeline set-up, every page,
every commit, the last close of the file; not the interpreter's start nor imports, which `process_s`
includes). Each side runs `--repeat` times, alternating who goes first; medians are reported. Both DuckDB
files are queried afterwards: each must hold exactly `--records` rows with distinct ids.

`--user-path` measures the code location as users run it instead of the connector alone: ~230,000 contacts
(`--records 230000` unless given) and, on our side, `dagster asset materialize -m integration_assets.definitions
--select crm/contacts` (the code location's own executor and whatever checks it runs with that selection) with
a fresh Dagster home (the quickstart's SQLite instance) and a fresh DuckDB warehouse, beside the same dlt
pipeline. Its records/s = distinct ids landed / wall seconds of the whole command (process start to exit), and
/ the run's own seconds (RUN_START to RUN_SUCCESS in the instance's event log). `--sides` picks any of
`ours`, `user_path`, `dlt` (e.g. all three in one run).

`--profile` then looks at our side: py-spy samples of one run, sorted into stages (HTTP, JSON decode, RawRow
building, re-serialization, DuckDB upsert, commit, connection close...), a timed run with the close of every
DuckDB connection clocked, and "what-if" runs with candidate changes patched into the worker process only
(the project's code is not changed): one DuckDB connection per sync, orjson, fetching ahead in a thread.

    .venv/bin/python benchmarks/connector_vs_dlt.py                 # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/connector_vs_dlt.py --profile       # ~3.5 minutes
    .venv/bin/python benchmarks/connector_vs_dlt.py --user-path     # 230,000 contacts, user path vs dlt
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h

TARGET_RATIO = 3.0  # the connector alone (`ours`) against dlt
TARGET_USER_PATH_RATIO = 1.5  # `dagster asset materialize`, checks included, against dlt (issue 11)
USER_PATH_RECORDS = 230_000
SIDES = ("ours", "user_path", "dlt")
DLT_DATASET = "hubspot_bench"
WHAT_IF = ("one_connection", "one_connection+orjson", "one_connection+orjson+prefetch")


def contacts_properties() -> str:
    from integration_assets.systems import CATALOG

    return ",".join(CATALOG.stream("crm/contacts").reader.properties)


# -- workers (each in its own process) ---------------------------------------------------------------------
def worker_ours(url: str, db: str, *, close_timings: bool = False, patches: str = "") -> dict:
    from integration_assets.core.sync import sync_stream
    from integration_assets.core.warehouse import Warehouse
    from integration_assets.systems import CATALOG
    from integration_assets.systems.crm.resource import HubSpotResource

    closes = _clock_closes() if close_timings else None
    finish = _patch(patches) if patches else None
    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    warehouse.ensure_ops_tables()
    client = HubSpotResource(base_url=url, access_token=h.HUBSPOT_TOKEN, requests_per_10s=None).client(
        "crm_source", run_id="bench"
    )
    stream = CATALOG.stream("crm/contacts")
    report = sync_stream(stream, client, warehouse, run_id="bench", full_refresh=True)
    if finish is not None:
        finish()
    load_s = time.perf_counter() - started
    result = {
        "side": "ours" + (f" what-if {patches}" if patches else ""),
        "load_s": round(load_s, 3),
        "fetched": report.fetched,
        "inserted": report.inserted,
        "pages": report.pages,
        "chunks": report.chunks,
        "calls": client.call_log.summary(),
    }
    if closes is not None:
        result["connection_closes"] = {
            "count": len(closes),
            "total_s": round(sum(closes), 3),
            "max_ms": round(1000 * max(closes), 1),
            "every_ms": [round(1000 * c) for c in closes],
        }
    return result


def _clock_closes() -> list[float]:
    """Times each `Warehouse._session` close (DuckDB checkpoints the file when its last connection closes)."""
    from integration_assets.core import warehouse

    closes: list[float] = []
    original = warehouse.Warehouse._session

    @contextlib.contextmanager
    def session(self):
        manager = original(self)
        connection = manager.__enter__()
        try:
            yield connection
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            closing = time.perf_counter()
            manager.__exit__(None, None, None)
            closes.append(time.perf_counter() - closing)

    warehouse.Warehouse._session = session
    return closes


def _patch(patches: str):
    """Prototypes of suggested changes, patched into this worker process only. Returns what ends the load."""
    import fcntl
    import queue
    import threading

    import duckdb
    import requests

    from integration_assets.core import warehouse
    from integration_assets.systems.crm import streams

    held: dict = {}
    names = set(patches.split("+"))
    if "one_connection" in names:
        # One DuckDB connection (and one flock) for the whole sync, still one transaction per chunk: the file
        # is checkpointed once, at the end, instead of at every chunk's close.
        @contextlib.contextmanager
        def session(self):
            with warehouse._exclusive(f"{self.backend}:{self.target}"):
                if "connection" not in held:
                    held["fd"] = os.open(self.target + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
                    fcntl.flock(held["fd"], fcntl.LOCK_EX)
                    held["connection"] = duckdb.connect(self.target)
                yield held["connection"]

        warehouse.Warehouse._session = session
    if "orjson" in names:
        import orjson

        from integration_assets.core.warehouse import transaction  # where upsert_raw looks payload_text up

        def _orjson_decode(self, **_):
            return orjson.loads(self.content)

        def _orjson_payload_text(payload):  # sorted keys, compact, UTF-8, as payload_text makes it
            return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()

        requests.Response.json = _orjson_decode
        transaction.payload_text = _orjson_payload_text
    if "prefetch" in names:
        # The stream's pages are fetched in a thread, at most two chunks ahead, while this thread writes the
        # previous chunk (DuckDB releases the GIL while it works).
        read = streams.HubSpotStream.read

        def read_ahead(self, client, cursor):
            chunks: queue.Queue = queue.Queue(maxsize=2)
            end = object()

            def produce():
                try:
                    for chunk in read(self, client, cursor):
                        chunks.put(chunk)
                    chunks.put(end)
                except BaseException as error:
                    chunks.put(error)

            threading.Thread(target=produce, daemon=True).start()
            while (item := chunks.get()) is not end:
                if isinstance(item, BaseException):
                    raise item
                yield item

        streams.HubSpotStream.read = read_ahead

    def finish_one_connection() -> None:
        if "connection" in held:
            held.pop("connection").close()  # the one checkpoint, inside the timed load
            os.close(held.pop("fd"))

    return finish_one_connection


def worker_dlt(url: str, db: str, pipelines_dir: str, properties: str) -> dict:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    started = time.perf_counter()
    source = rest_api_source(
        {
            "client": {
                "base_url": url.rstrip("/") + "/",
                "auth": {"type": "bearer", "token": h.HUBSPOT_TOKEN},
                "paginator": {"type": "cursor", "cursor_path": "paging.next.after", "cursor_param": "after"},
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "contacts",
                    "endpoint": {
                        "path": "crm/v3/objects/contacts",
                        "params": {"limit": 100, "properties": properties},
                        "data_selector": "results",
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_contacts",
        destination=dlt.destinations.duckdb(db),
        dataset_name=DLT_DATASET,
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run(source, loader_file_format="parquet")
    load_s = time.perf_counter() - started
    return {"side": "dlt", "load_s": round(load_s, 3), "has_failed_jobs": info.has_failed_jobs}


# -- the comparison ------------------------------------------------------------------------------------------
def landed(db: Path, table: str) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()


def run_side(server: h.SandboxProcess, side: str, folder: Path, name: str, *, wrap=None, extra=()) -> dict:
    if side == "user_path":
        return run_user_path(server, folder, name)
    db = folder / f"{name}.duckdb"
    arguments = [__file__, "--worker", side, "--url", server.urls["hubspot"], "--db", str(db), *extra]
    if side == "dlt":
        arguments += ["--properties", contacts_properties(), "--pipelines-dir", str(folder / f"{name}_pipelines")]
    server_cpu = server.cpu_s()
    run = h.run_worker(arguments, wrap=wrap, env={"RUNTIME__DLTHUB_TELEMETRY": "false"})
    server_cpu = server.cpu_s() - server_cpu
    table = '"raw"."crm_contacts"' if side == "ours" else f'"{DLT_DATASET}"."contacts"'
    rows, distinct = landed(db, table)
    return {
        **run.result,
        "rows": rows,
        "distinct_ids": distinct,
        "records_per_s": round(distinct / run.result["load_s"]),
        "records_per_s_process": round(distinct / run.process_s),  # interpreter start and imports included
        "process_s": run.process_s,
        "cpu_s": run.cpu_s,
        "sandbox_cpu_s": round(server_cpu, 2),
        "db_mb": round(db.stat().st_size / 1e6, 1),
        "load1": round(os.getloadavg()[0], 2),
    }


def run_user_path(server: h.SandboxProcess, folder: Path, name: str, timeout: float = 3600) -> dict:
    """`dagster asset materialize --select crm/contacts` as a user runs it: fresh home and warehouse, the code
    location's environment pointed at the sandbox, the command started in an empty folder (no `.env`)."""
    root = folder / name
    root.mkdir()
    home, db = h.dagster_home(root / "dagster_home"), root / "warehouse.duckdb"
    command = [h.DAGSTER, "asset", "materialize", "-m", h.CODE_LOCATION, "--select", "crm/contacts"]
    server_cpu = server.cpu_s()
    run = h.run_command(
        command, env=h.code_location_env(server.urls, home, db), cwd=root, log=root / "log", timeout=timeout
    )
    server_cpu = server.cpu_s() - server_cpu
    figures = h.run_figures(home, run.started_at, run.ended_at)
    try:
        rows, distinct = landed(db, '"raw"."crm_contacts"')
    except Exception:  # no warehouse or no table: nothing landed
        rows = distinct = 0
    success = run.returncode == 0 and bool(figures.get("success"))
    if not success:
        print(f"user path run {name} FAILED (exit {run.returncode}):\n{h.log_tail(run.log)}", file=sys.stderr)
    run_s = figures.get("run_s")
    return {
        "side": "user_path",
        "success": success,
        "load_s": run.wall_s,  # the whole command: process start, loading the code location, the run, exit
        "run_s": run_s,
        "before_run_s": figures.get("before_run_s"),
        "first_step_after_s": figures.get("first_step_after_s"),
        "after_run_s": figures.get("after_run_s"),
        "steps": figures.get("steps"),
        "step_s": figures.get("slowest_steps"),
        "step_s_sum": figures.get("step_s_sum"),
        "step_launch_s_sum": figures.get("step_launch_s_sum"),
        "checks": figures.get("checks"),
        "checks_failed": figures.get("checks_failed"),
        "source_calls": figures.get("source_calls"),
        "rows": rows,
        "distinct_ids": distinct,
        "records_per_s": round(distinct / run.wall_s),
        "records_per_s_run": round(distinct / run_s) if run_s else None,
        "sandbox_cpu_s": round(server_cpu, 2),
        "db_mb": round(db.stat().st_size / 1e6, 1) if db.exists() else None,
        "load1": round(os.getloadavg()[0], 2),
    }


# py-spy frames (innermost first wins) -> stage of our load
STAGES = (
    ("Transaction._upsert_duckdb", "DuckDB upsert (classify SELECT + INSERT ON CONFLICT)"),
    ("payload_text", "json re-serialization (warehouse.payload_text)"),
    ("_patch.<locals>._orjson_payload_text", "json re-serialization (warehouse.payload_text)"),
    ("_patch.<locals>._orjson_decode", "JSON decode (response.json)"),
    ("_patch.<locals>.finish_one_connection", "DuckDB connect + close (close = checkpoint)"),
    ("_has_nul", "NUL check of payload text"),
    ("_latest_per_id", "dedupe + sort by id (_latest_per_id)"),
    ("Transaction.append", "ops.api_calls append (DuckDB)"),
    ("Transaction.mark_missing_deleted", "mark_missing_deleted (DuckDB)"),
    ("Transaction.set_cursor", "set_cursor (DuckDB)"),
    ("Warehouse.ensure_table", "ensure_table DDL"),
    ("Warehouse.ensure_ops_tables", "ensure_table DDL"),
    ("Warehouse._session", "DuckDB connect + close (close = checkpoint)"),
    ("Warehouse.transaction", "BEGIN / COMMIT"),
    ("Response.json", "JSON decode (response.json)"),
    ("ApiClient._log", "call-log record"),
    ("CallRecord.as_row", "call-log record"),
    ("Session.request", "HTTP request/response (requests)"),
    ("HubSpotStream._row", "RawRow building (incl. iso_to_ms)"),
    ("observe_fields", "observe_fields (schema observation)"),
    ("HubSpotStream._listing", "stream loop"),
    ("Transaction.upsert_raw", "upsert_raw own code"),
    ("ApiClient.call", "ApiClient.call own code"),
    ("sync_stream", "sync_stream loop"),
)


def pyspy_stages(path: Path, rate: int) -> dict:
    """Seconds of our load per stage from py-spy's collapsed stacks; imports left out."""
    stages: dict[str, int] = {}
    functions: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame.split(" (")[0] for frame in stack.split(";")]
        if "worker_ours" not in frames:
            continue
        below = frames[frames.index("worker_ours") + 1 :]
        if not below or below[0].startswith("_find_and_load") or below[0] == "_handle_fromlist":
            continue  # a module import, not the load
        stage = next((label for frame in reversed(frames) for name, label in STAGES if frame == name), "other")
        stages[stage] = stages.get(stage, 0) + int(count)
        functions[frames[-1]] = functions.get(frames[-1], 0) + int(count)
    total = sum(stages.values())
    return {
        "sampled_load_s": round(total / rate, 2),
        "stages_s": {k: round(v / rate, 2) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])},
        "top_own_functions_s": {
            k: round(v / rate, 2) for k, v in sorted(functions.items(), key=lambda kv: -kv[1])[:15]
        },
    }


def profile(server: h.SandboxProcess, folder: Path) -> dict:
    findings: dict = {}
    rate = 250
    samples = folder / "ours.pyspy.txt"
    spy = [str(Path(h.PYTHON).with_name("py-spy")), "record", "-r", str(rate), "-f", "raw", "-o", str(samples), "--"]
    try:
        run = run_side(server, "ours", folder, "profile_pyspy", wrap=spy)
        findings["pyspy"] = {"load_s": run["load_s"], **pyspy_stages(samples, rate)}
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        findings["pyspy"] = {"error": str(error)[:500]}
    h.emit({"profile": "py-spy", **findings["pyspy"]})
    timed = run_side(server, "ours", folder, "profile_closes", extra=["--close-timings"])
    findings["closes"] = {"load_s": timed["load_s"], **timed["connection_closes"]}
    h.emit({"profile": "connection closes", **findings["closes"]})
    findings["what_if"] = {}
    for patches in WHAT_IF:
        run = run_side(server, "ours", folder, "whatif_" + patches.replace("+", "_"), extra=["--patch", patches])
        findings["what_if"][patches] = run["records_per_s"]
        h.emit({"profile": "what-if", "patches": patches, **run})
    return findings


def summarize_side(results: list[dict], records: int) -> dict:
    """Medians of one side's runs (what a side does not measure is left out)."""

    def median(name: str) -> float | None:
        values = [r[name] for r in results if r.get(name) is not None]
        return round(statistics.median(values), 2) if values else None

    summary = {
        "records_per_s_median": round(statistics.median(r["records_per_s"] for r in results)),
        "records_per_s_all": [r["records_per_s"] for r in results],
        "records_per_s_process_median": round(
            statistics.median(r.get("records_per_s_process", r["records_per_s"]) for r in results)
        ),
        "load_s_median": median("load_s"),
        "process_s_median": median("process_s"),
        "cpu_s_median": median("cpu_s"),
        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in results if "peak_rss_mb" in r), default=None),
        "exact": all(r["distinct_ids"] == r["rows"] == records for r in results),
    }
    if results[0]["side"] == "user_path":
        summary.update(
            records_per_s_run_median=round(statistics.median(r["records_per_s_run"] or 0 for r in results)),
            run_s_median=median("run_s"),
            before_run_s_median=median("before_run_s"),
            first_step_after_s_median=median("first_step_after_s"),
            step_s_sum_median=median("step_s_sum"),
            steps=results[0]["steps"],
            checks=results[0]["checks"],
            checks_failed_max=max((r["checks_failed"] or 0) for r in results),
            success=all(r["success"] for r in results),
        )
    return summary


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument(
        "--records", type=int, help=f"live contacts (default 100,000; {USER_PATH_RECORDS:,} with --user-path)"
    )
    options.add_argument("--scale", type=int, default=0, help="companies to generate (default: enough)")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--repeat", type=int, default=3, help="runs per side, taking turns")
    options.add_argument("--profile", action="store_true", help="also profile our side (py-spy, what-if runs)")
    options.add_argument(
        "--user-path",
        action="store_true",
        help="our side through `dagster asset materialize --select crm/contacts` (checks included), not the "
        "connector alone; same as --sides user_path,dlt",
    )
    options.add_argument("--sides", help=f"comma-separated, any of {', '.join(SIDES)} (default: ours,dlt)")
    options.add_argument("--markdown", action="store_true", help="also print a markdown table, ready to paste")
    options.add_argument("--worker", choices=("ours", "dlt"), help=argparse.SUPPRESS)
    options.add_argument("--url", help=argparse.SUPPRESS)
    options.add_argument("--db", help=argparse.SUPPRESS)
    options.add_argument("--pipelines-dir", help=argparse.SUPPRESS)
    options.add_argument("--properties", help=argparse.SUPPRESS)
    options.add_argument("--close-timings", action="store_true", help=argparse.SUPPRESS)
    options.add_argument("--patch", default="", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.worker == "ours":
        h.emit(
            {
                **worker_ours(args.url, args.db, close_timings=args.close_timings, patches=args.patch),
                **h.proc_memory_mb(),
            }
        )
        return 0
    if args.worker == "dlt":
        h.emit({**worker_dlt(args.url, args.db, args.pipelines_dir, args.properties), **h.proc_memory_mb()})
        return 0

    sides = tuple(args.sides.split(",")) if args.sides else ("user_path", "dlt") if args.user_path else ("ours", "dlt")
    if not set(sides) <= set(SIDES) or "dlt" not in sides or len(sides) < 2:
        options.error(f"--sides: dlt and at least one of ours, user_path (got {','.join(sides)})")
    records = args.records or (USER_PATH_RECORDS if "user_path" in sides else 100_000)
    scale = args.scale or int(records / 2.25) + 500  # ~2.35 contacts per company, ~1% of them archived
    machine_before = h.machine()
    state = h.git_state()
    with h.scratch("bench_connector_") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        h.generate(folder / "data", scale=scale, seed=args.seed)
        h.contacts_only(folder / "data", records)
        generated_s = time.perf_counter() - began
        with h.sandbox(folder / "data") as server:
            warm = h.walk_hubspot(server.urls["hubspot"], "contacts", contacts_properties())
            h.emit({"setup": "dataset", "contacts": warm, "scale": scale, "generate_s": round(generated_s, 1)})
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            for index in range(args.repeat):
                shift = index % len(sides)  # who goes first takes turns
                for side in sides[shift:] + sides[:shift]:
                    result = run_side(server, side, folder, f"{side}_{index}")
                    runs[side].append(result)
                    h.emit({"run": index, **result})
            findings = profile(server, folder) if args.profile else None
            sandbox_memory = server.memory_mb()

    summary = {"benchmark": "connector_vs_dlt", "code": state, "records": records, "repeat": args.repeat}
    summary["machine_before"], summary["machine_after"] = machine_before, h.machine()
    for side, results in runs.items():
        summary[side] = summarize_side(results, records)
    dlt = summary["dlt"]
    targets = {"ours": TARGET_RATIO, "user_path": TARGET_USER_PATH_RATIO}
    ratios = {}
    for side in sides:
        if side != "dlt":
            ratio = summary[side]["records_per_s_median"] / dlt["records_per_s_median"]
            ratios[side] = round(ratio, 2)
            summary[f"ratio_{side}_to_dlt"] = round(ratio, 2)
            summary[f"target_{side}"] = targets[side]
            summary[f"target_{side}_met"] = ratio >= targets[side] and summary[side]["exact"]
            summary[f"ratio_{side}_to_dlt_process"] = round(
                summary[side]["records_per_s_process_median"] / dlt["records_per_s_process_median"], 2
            )
    summary["sandbox_memory"] = sandbox_memory
    if findings is not None:
        summary["what_if_records_per_s"] = findings["what_if"]
    h.emit(summary)

    names = {"ours": "ours (connector alone, sync_stream)", "user_path": "ours (user path, CLI)", "dlt": "dlt"}
    lines = [
        f"\n{records:,} HubSpot contacts -> DuckDB, median of {args.repeat} runs per side taking turns "
        f"({os.cpu_count()} cores, load {machine_before['load1']} before, {summary['machine_after']['load1']} "
        f"after; {state}):",
    ]
    for side in sides:
        figures = summary[side]
        line = f"  {names[side]:<36} {figures['records_per_s_median']:>7,} records/s"
        line += f"  wall {figures['load_s_median']:6.2f} s"
        if side == "user_path":
            line += (
                f" (run {figures['run_s_median']} s: {figures['records_per_s_run_median']:,} records/s; before the"
                f" run {figures['before_run_s_median']} s; {figures['steps']} steps summing"
                f" {figures['step_s_sum_median']} s; {figures['checks']} checks, {figures['checks_failed_max']} failed)"
            )
        else:
            line += f"  cpu {figures['cpu_s_median']:6.2f} s  peak RSS {figures['peak_rss_mb_max']:5.0f} MB"
        lines.append(line + f"  exactly {records:,} distinct ids: {figures['exact']}")
    for side, ratio in ratios.items():
        met = summary[f"target_{side}_met"]
        lines.append(f"  ratio {side}/dlt {ratio:.2f} (target >= {targets[side]}): {'MET' if met else 'NOT MET'}")
    if "user_path" in sides:
        slow = runs["user_path"][len(runs["user_path"]) // 2]["step_s"] or {}
        lines.append("  user path, slowest steps of one run: " + ", ".join(f"{k} {v} s" for k, v in slow.items()))
    if findings is not None:
        if "stages_s" in findings["pyspy"]:
            lines.append(f"  where our load goes (py-spy, {findings['pyspy']['sampled_load_s']} s sampled):")
            lines += [f"    {s:6.2f} s  {stage}" for stage, s in findings["pyspy"]["stages_s"].items()]
        closes = findings["closes"]
        lines.append(
            f"  DuckDB connection closes: {closes['count']} (one per transaction), {closes['total_s']} s in all, "
            f"up to {closes['max_ms']:.0f} ms each as the table grows (every_ms in the JSON line)"
        )
        lines += [f"  what-if {name}: {value:,} records/s" for name, value in findings["what_if"].items()]
    print("\n".join(lines), flush=True)
    if args.markdown:
        print("\n" + markdown(summary, sides, records, args.repeat), flush=True)
    return 0 if all(summary[side]["exact"] for side in sides) else 1


def markdown(summary: dict, sides: tuple[str, ...], records: int, repeat: int) -> str:
    """The comparison as a markdown table, ready to paste into BENCHMARKS.md."""
    label = {
        "ours": "ours, connector alone (`sync_stream` in a worker process)",
        "user_path": "ours, user path (`dagster asset materialize`, checks included)",
        "dlt": "dlt 1.31 `rest_api`",
    }
    before, after = summary["machine_before"]["load1"], summary["machine_after"]["load1"]
    lines = [
        f"{records:,} HubSpot contacts, median of {repeat} runs per side taking turns; {summary['code']}; "
        f"load average {before} before, {after} after.",
        "",
        "| | records/s: whole process (user path: the command) | records/s: load (user path: the run) "
        "| seconds: whole process / load (user path: command / run) | ratio to dlt's load | ratio, whole processes "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side in sides:
        figures = summary[side]
        user = side == "user_path"
        target = summary.get(f"target_{side}")
        ratio = summary.get(f"ratio_{side}_to_dlt")
        ratio_process = summary.get(f"ratio_{side}_to_dlt_process")
        whole_rate = figures["records_per_s_median"] if user else figures["records_per_s_process_median"]
        load_rate = figures["records_per_s_run_median"] if user else figures["records_per_s_median"]
        seconds = (
            (figures["load_s_median"], figures["run_s_median"])
            if user
            else (
                figures["process_s_median"],
                figures["load_s_median"],
            )
        )
        met = ("yes" if summary[f"target_{side}_met"] else "**no**") if target else ""
        lines.append(
            f"| {label[side]} | {whole_rate:,} | {load_rate:,} | {seconds[0]} / {seconds[1]} | "
            f"{'' if ratio is None else ratio} | {'' if ratio_process is None else ratio_process} | "
            f"{f'>= {target}' if target else ''} | {met} |"
        )
    if "user_path" in sides:
        figures = summary["user_path"]
        lines += [
            "",
            f"User path: {figures['steps']} steps, {figures['checks']} checks ({figures['checks_failed_max']} failed); "
            f"before the run {figures['before_run_s_median']} s (interpreter, imports, loading the code location), "
            f"run start to first step {figures['first_step_after_s_median']} s, steps summing "
            f"{figures['step_s_sum_median']} s (medians).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
