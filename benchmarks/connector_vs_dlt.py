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

`--profile` then looks at our side: py-spy samples of one run, sorted into stages (HTTP, JSON decode, RawRow
building, re-serialization, DuckDB upsert, commit, connection close...), a timed run with the close of every
DuckDB connection clocked, and "what-if" runs with candidate changes patched into the worker process only
(the project's code is not changed): one DuckDB connection per sync, orjson, fetching ahead in a thread.

    .venv/bin/python benchmarks/connector_vs_dlt.py                 # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/connector_vs_dlt.py --profile       # ~3.5 minutes
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

TARGET_RATIO = 3.0
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
        "process_s": run.process_s,
        "cpu_s": run.cpu_s,
        "sandbox_cpu_s": round(server_cpu, 2),
        "db_mb": round(db.stat().st_size / 1e6, 1),
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


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--records", type=int, default=100_000)
    options.add_argument("--scale", type=int, default=0, help="companies to generate (default: enough)")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--repeat", type=int, default=3, help="runs per side, alternating")
    options.add_argument("--profile", action="store_true", help="also profile our side (py-spy, what-if runs)")
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

    scale = args.scale or int(args.records / 2.25) + 500  # ~2.35 contacts per company, ~1% of them archived
    machine_before = h.machine()
    with h.scratch("bench_connector_") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        h.generate(folder / "data", scale=scale, seed=args.seed)
        h.contacts_only(folder / "data", args.records)
        generated_s = time.perf_counter() - began
        with h.sandbox(folder / "data") as server:
            warm = h.walk_hubspot(server.urls["hubspot"], "contacts", contacts_properties())
            h.emit({"setup": "dataset", "contacts": warm, "scale": scale, "generate_s": round(generated_s, 1)})
            runs: dict[str, list[dict]] = {"ours": [], "dlt": []}
            for index in range(args.repeat):
                for side in ("ours", "dlt") if index % 2 == 0 else ("dlt", "ours"):
                    result = run_side(server, side, folder, f"{side}_{index}")
                    runs[side].append(result)
                    h.emit({"run": index, **result})
            findings = profile(server, folder) if args.profile else None
            sandbox_memory = server.memory_mb()

    summary = {"benchmark": "connector_vs_dlt", "records": args.records, "repeat": args.repeat}
    summary["machine_before"], summary["machine_after"] = machine_before, h.machine()
    for side, results in runs.items():
        summary[side] = {
            "records_per_s_median": round(statistics.median(r["records_per_s"] for r in results)),
            "records_per_s_all": [r["records_per_s"] for r in results],
            "load_s_median": round(statistics.median(r["load_s"] for r in results), 2),
            "process_s_median": round(statistics.median(r["process_s"] for r in results), 2),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 2),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in results),
            "exact": all(r["distinct_ids"] == r["rows"] == args.records for r in results),
        }
    ratio = summary["ours"]["records_per_s_median"] / summary["dlt"]["records_per_s_median"]
    summary.update(ratio_ours_to_dlt=round(ratio, 2), target_ratio=TARGET_RATIO, target_met=ratio >= TARGET_RATIO)
    summary["sandbox_memory"] = sandbox_memory
    if findings is not None:
        summary["what_if_records_per_s"] = findings["what_if"]
    h.emit(summary)

    ours, dlt = summary["ours"], summary["dlt"]
    lines = [
        f"\n{args.records:,} HubSpot contacts -> DuckDB, median of {args.repeat} alternating runs per side "
        f"({os.cpu_count()} cores, load {machine_before['load1']} before, {summary['machine_after']['load1']} after):",
    ]
    for name, side in (("ours", ours), ("dlt", dlt)):
        lines.append(
            f"  {name:<4} {side['records_per_s_median']:>7,} records/s  load {side['load_s_median']:6.2f} s  "
            f"cpu {side['cpu_s_median']:6.2f} s  peak RSS {side['peak_rss_mb_max']:5.0f} MB  "
            f"exactly {args.records:,} distinct ids: {side['exact']}"
        )
    lines.append(
        f"  ratio ours/dlt {ratio:.2f} (target >= {TARGET_RATIO}): {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}"
    )
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
    return 0 if ours["exact"] and dlt["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
