"""100,000 HubSpot contacts into DuckDB: this project's connector against dlt 1.31's `rest_api` source.

Both read the same unthrottled sandbox (its own process, pages pre-rendered by one warm-up pass so neither
side pays for the server's first rendering) and write a fresh DuckDB file, each in its own process so its
peak memory is its own:

- ours: `sync_stream` of `crm/contacts` (full refresh) through `HubSpotResource(...).client(...)` into a
  fresh `Warehouse`, as the Dagster asset does it;
- dlt:  `rest_api_source` with bearer auth, `crm/v3/objects/contacts?limit=100&properties=<ours>`, cursor
  paginator on `paging.next.after`, `data_selector: results`, primary key `id`, merge, parquet loader.

records/s = records landed / wall seconds of the whole load (client and pipeline set-up, every page, every
commit; not the interpreter's start nor imports, which are reported apart as `process_s`). Each side runs
`--repeat` times, alternating; the median is reported. Both DuckDB files are then queried: each must hold
exactly `--records` distinct ids.

    .venv/bin/python benchmarks/connector_vs_dlt.py                       # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/connector_vs_dlt.py --repeat 1 --profile  # + py-spy and a timing breakdown
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h

TARGET_RATIO = 3.0
DLT_DATASET = "hubspot_bench"


def contacts_properties() -> str:
    from integration_assets.systems.crm.streams import STREAMS

    return ",".join(next(s for s in STREAMS if s.object_type == "contacts").properties)


# -- workers (each in its own process) ---------------------------------------------------------------------
def worker_ours(url: str, db: str, breakdown: bool) -> dict:
    from integration_assets.core.sync import sync_stream
    from integration_assets.core.warehouse import Warehouse
    from integration_assets.systems.crm.resource import HubSpotResource
    from integration_assets.systems.crm.streams import STREAMS

    timers = _instrument() if breakdown else None
    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    warehouse.ensure_ops_tables()
    client = HubSpotResource(base_url=url, access_token=h.HUBSPOT_TOKEN, requests_per_10s=None).client(
        "crm_source", run_id="bench"
    )
    stream = next(s for s in STREAMS if s.object_type == "contacts")
    report = sync_stream(stream, client, warehouse, run_id="bench", full_refresh=True)
    load_s = time.perf_counter() - started
    result = {
        "side": "ours",
        "load_s": round(load_s, 3),
        "fetched": report.fetched,
        "inserted": report.inserted,
        "pages": report.pages,
        "chunks": report.chunks,
        "calls": client.call_log.summary(),
    }
    if timers is not None:
        result["breakdown_s"] = {name: round(seconds, 3) for name, seconds in timers.items()}
        result["breakdown_s"]["total_load"] = round(load_s, 3)
    return result


def _instrument() -> dict[str, float]:
    """Wraps the connector's stages in timers (in this worker only): exclusive seconds per stage."""
    import requests

    from integration_assets.core import http, sync, warehouse
    from integration_assets.systems.crm import streams

    timers: dict[str, float] = {}
    stack: list[list[float]] = []  # [start, child seconds] of the open timed frames

    def timed(name, function):
        def wrapper(*args, **kwargs):
            stack.append([time.perf_counter(), 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                start, children = stack.pop()
                spent = time.perf_counter() - start
                timers[name] = timers.get(name, 0.0) + spent - children
                if stack:
                    stack[-1][1] += spent

        return wrapper

    requests.Session.request = timed("http: requests send+receive", requests.Session.request)
    requests.Response.json = timed("http: JSON decode (response.json)", requests.Response.json)
    http.ApiClient._log = timed("http: call-log record", http.ApiClient._log)
    http.ApiClient.call = timed("http: ApiClient.call own code", http.ApiClient.call)
    streams.HubSpotStream._row = timed("stream: RawRow building", streams.HubSpotStream._row)
    sync.observe_fields = timed("sync: observe_fields", sync.observe_fields)
    warehouse._latest_per_id = timed("warehouse: dedupe+sort (_latest_per_id)", warehouse._latest_per_id)
    warehouse.payload_text = timed("warehouse: payload_text (json re-encode)", warehouse.payload_text)
    warehouse.Transaction._upsert_duckdb = timed(
        "warehouse: DuckDB classify+INSERT", warehouse.Transaction._upsert_duckdb
    )
    warehouse.Transaction.upsert_raw = timed("warehouse: upsert_raw own code", warehouse.Transaction.upsert_raw)
    warehouse.Transaction.append = timed("warehouse: ops.api_calls append", warehouse.Transaction.append)
    warehouse.Transaction.mark_missing_deleted = timed(
        "warehouse: mark_missing_deleted", warehouse.Transaction.mark_missing_deleted
    )
    warehouse.Transaction.set_cursor = timed("warehouse: set_cursor", warehouse.Transaction.set_cursor)
    warehouse.Warehouse.ensure_table = timed("warehouse: ensure_table DDL", warehouse.Warehouse.ensure_table)

    original_session = warehouse.Warehouse._session

    @__import__("contextlib").contextmanager
    def session(self):
        # Opening and closing the file (connect, flock, checkpoint on close) per transaction.
        start = time.perf_counter()
        manager = original_session(self)
        connection = manager.__enter__()
        opened = time.perf_counter()
        timers["warehouse: connect+lock per transaction"] = (
            timers.get("warehouse: connect+lock per transaction", 0.0) + opened - start
        )
        try:
            yield connection
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            closing = time.perf_counter()
            manager.__exit__(None, None, None)
            timers["warehouse: COMMIT+close per transaction"] = timers.get(
                "warehouse: COMMIT+close per transaction", 0.0
            ) + (time.perf_counter() - closing)

    warehouse.Warehouse._session = session
    original_transaction = warehouse.Warehouse.transaction.__wrapped__

    @__import__("contextlib").contextmanager
    def transaction(self):
        generator = original_transaction(self)
        tx = next(generator)
        try:
            yield tx
        except BaseException as error:
            try:
                generator.throw(error)
            except StopIteration:
                return
            raise
        else:
            commit = time.perf_counter()
            for _ in generator:  # runs COMMIT
                pass
            timers["warehouse: COMMIT statement"] = timers.get("warehouse: COMMIT statement", 0.0) + (
                time.perf_counter() - commit
            )

    warehouse.Warehouse.transaction = transaction
    return timers


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


def run_side(
    side: str, url: str, server_pid: int, folder: Path, index: int, properties: str, wrap=None, extra=()
) -> dict:
    db = folder / f"{side}_{index}.duckdb"
    arguments = [__file__, "--worker", side, "--url", url, "--db", str(db), "--properties", properties, *extra]
    if side == "dlt":
        arguments += ["--pipelines-dir", str(folder / f"dlt_pipelines_{index}")]
    server_cpu = h.proc_cpu_s(server_pid)
    run = h.run_worker(arguments, wrap=wrap, env={"RUNTIME__DLTHUB_TELEMETRY": "false"})
    server_cpu = h.proc_cpu_s(server_pid) - server_cpu
    table = '"raw"."crm_contacts"' if side == "ours" else f'"{DLT_DATASET}"."contacts"'
    rows, distinct = landed(db, table)
    return {
        **run.result,
        "run": index,
        "rows": rows,
        "distinct_ids": distinct,
        "records_per_s": round(distinct / run.result["load_s"]),
        "process_s": run.process_s,
        "cpu_s": run.cpu_s,
        "sandbox_cpu_s": round(server_cpu, 2),
        "db_mb": round(db.stat().st_size / 1e6, 1),
    }


def profile(url: str, server_pid: int, folder: Path, properties: str) -> None:
    """py-spy over our worker (flat per-function totals), then the instrumented timing breakdown."""
    raw = folder / "ours.pyspy.txt"
    spy = [str(Path(h.PYTHON).with_name("py-spy")), "record", "-r", "200", "-f", "raw", "-o", str(raw), "--"]
    try:
        run_side("ours", url, server_pid, folder, 900, properties, wrap=spy)
        h.emit({"profile": "py-spy", "top_own": _pyspy_top(raw, own=True), "top_total": _pyspy_top(raw, own=False)})
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        h.emit({"profile": "py-spy", "error": str(error)[:500]})
    timed = run_side("ours", url, server_pid, folder, 901, properties, extra=["--breakdown"])
    h.emit({"profile": "breakdown", "records_per_s": timed["records_per_s"], "seconds": timed["breakdown_s"]})


def _pyspy_top(path: Path, own: bool, top: int = 25) -> list[tuple[str, float]]:
    """Shares of samples per function from py-spy's collapsed stacks: own (leaf) time or total (inclusive)."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] for f in stack.split(";")]
        n = int(count)
        total += n
        for name in [frames[-1]] if own else set(frames):
            counts[name] = counts.get(name, 0) + n
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return [(name, round(100 * n / total, 1)) for name, n in ranked]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--records", type=int, default=100_000)
    options.add_argument("--scale", type=int, default=0, help="companies to generate (default: enough)")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--repeat", type=int, default=3, help="runs per side, alternating")
    options.add_argument("--profile", action="store_true", help="also profile our side (py-spy, breakdown)")
    options.add_argument("--worker", choices=("ours", "dlt"), help=argparse.SUPPRESS)
    options.add_argument("--url", help=argparse.SUPPRESS)
    options.add_argument("--db", help=argparse.SUPPRESS)
    options.add_argument("--pipelines-dir", help=argparse.SUPPRESS)
    options.add_argument("--properties", help=argparse.SUPPRESS)
    options.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.worker == "ours":
        h.emit({**worker_ours(args.url, args.db, args.breakdown), **h.proc_memory_mb()})
        return 0
    if args.worker == "dlt":
        h.emit({**worker_dlt(args.url, args.db, args.pipelines_dir, args.properties), **h.proc_memory_mb()})
        return 0

    scale = args.scale or int(args.records / 2.25) + 500  # ~2.35 contacts per company, ~1% archived
    properties = contacts_properties()
    with h.scratch("bench_connector_") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        h.generate(folder / "data", scale=scale, seed=args.seed)
        h.contacts_only(folder / "data", args.records)
        generated_s = time.perf_counter() - began
        with h.sandbox(folder / "data") as server:
            url = server.urls["hubspot"]
            warm = h.walk_hubspot(url, "contacts", properties)
            h.emit({"setup": "dataset", "records": warm, "scale": scale, "generate_s": round(generated_s, 1)})
            runs: dict[str, list[dict]] = {"ours": [], "dlt": []}
            for index in range(args.repeat):
                for side in ("ours", "dlt") if index % 2 == 0 else ("dlt", "ours"):
                    result = run_side(side, url, server.process.pid, folder, index, properties)
                    runs[side].append(result)
                    h.emit(result)
            sandbox_memory = server.memory_mb()
            if args.profile:
                profile(url, server.process.pid, folder, properties)

    summary = {"benchmark": "connector_vs_dlt", "records": args.records, "repeat": args.repeat, **h.machine()}
    for side, results in runs.items():
        summary[side] = {
            "records_per_s_median": round(statistics.median(r["records_per_s"] for r in results)),
            "records_per_s_all": [r["records_per_s"] for r in results],
            "load_s_median": round(statistics.median(r["load_s"] for r in results), 2),
            "process_s_median": round(statistics.median(r["process_s"] for r in results), 2),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in results),
            "distinct_ids": sorted({r["distinct_ids"] for r in results}),
            "rows": sorted({r["rows"] for r in results}),
            "exact": all(r["distinct_ids"] == r["rows"] == args.records for r in results),
        }
    ratio = summary["ours"]["records_per_s_median"] / summary["dlt"]["records_per_s_median"]
    summary["ratio_ours_to_dlt"] = round(ratio, 2)
    summary["target_ratio"] = TARGET_RATIO
    summary["target_met"] = ratio >= TARGET_RATIO
    summary["sandbox_memory"] = sandbox_memory
    h.emit(summary)
    ours, dlt = summary["ours"], summary["dlt"]
    print(
        f"\n{args.records:,} HubSpot contacts -> DuckDB, median of {args.repeat} runs each ({os.cpu_count()} cores):\n"
        f"  ours: {ours['records_per_s_median']:>7,} records/s  load {ours['load_s_median']:.2f} s  "
        f"peak RSS {ours['peak_rss_mb_max']:.0f} MB  exact ids: {ours['exact']}\n"
        f"  dlt:  {dlt['records_per_s_median']:>7,} records/s  load {dlt['load_s_median']:.2f} s  "
        f"peak RSS {dlt['peak_rss_mb_max']:.0f} MB  exact ids: {dlt['exact']}\n"
        f"  ratio ours/dlt {ratio:.2f} (target >= {TARGET_RATIO}): {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}",
        flush=True,
    )
    return 0 if ours["exact"] and dlt["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
