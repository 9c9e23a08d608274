"""Peak memory of a 1,000,000-record backfill through this project's connector into DuckDB.

A dataset at `--scale` 100,000 companies holds ~1.04 million records over nine streams (HubSpot companies,
contacts, deals; Stripe customers, invoices, charges; Zendesk organizations, users, tickets). One worker
process backfills all nine, one after the other, with `sync_stream(..., full_refresh=True)` into one fresh
DuckDB warehouse, as the nine Dagster assets do; the sandbox serves them from its own process, unthrottled.

Reported: records, seconds, records/s, and the peak resident set (VmHWM) of the syncing process, the figure
the target is about (<= 1 GB); the sandbox's memory is reported apart and not counted. The worker prints a
line per stream as it goes (on stderr), with its resident set then; the raw tables are counted afterwards
against the dataset's manifest.

    .venv/bin/python benchmarks/backfill_memory.py                  # ~5 minutes on 2 cores
    .venv/bin/python benchmarks/backfill_memory.py --scale 10000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h

TARGET_MB = 1024
MANIFEST_FILE = {  # raw table -> the dataset file it mirrors
    "raw.crm_companies": "hubspot/companies",
    "raw.crm_contacts": "hubspot/contacts",
    "raw.crm_deals": "hubspot/deals",
    "raw.billing_customers": "stripe/customers",
    "raw.billing_invoices": "stripe/invoices",
    "raw.billing_payments": "stripe/charges",
    "raw.support_organizations": "zendesk/organizations",
    "raw.support_users": "zendesk/users",
    "raw.support_tickets": "zendesk/tickets",
}


def worker(urls: dict[str, str], db: str) -> dict:
    from benchmarks.connector_vs_dlt import _clock_closes
    from integration_assets.core.sync import sync_stream
    from integration_assets.core.warehouse import Warehouse
    from integration_assets.systems import CATALOG
    from integration_assets.systems.billing.resource import StripeResource
    from integration_assets.systems.crm.resource import HubSpotResource
    from integration_assets.systems.support.resource import ZendeskResource

    closes = _clock_closes()  # seconds of each DuckDB connection close (one per transaction)
    resources = {
        "crm": HubSpotResource(base_url=urls["hubspot"], access_token=h.HUBSPOT_TOKEN, requests_per_10s=None),
        "billing": StripeResource(base_url=urls["stripe"], api_key="sk_test_sandbox", requests_per_second=None),
        "support": ZendeskResource(
            base_url=urls["zendesk"], email="admin@sandbox.test", api_token="zendesk-sandbox", requests_per_minute=None
        ),
    }
    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    warehouse.ensure_ops_tables()
    streams, total = [], 0
    for stream in CATALOG.streams:
        began, closed = time.perf_counter(), len(closes)
        client = resources[stream.role].client(stream.connector, run_id="backfill")
        report = sync_stream(stream, client, warehouse, run_id="backfill", full_refresh=True)
        client.close()
        seconds = time.perf_counter() - began
        total += report.fetched
        line = {
            "stream": stream.key,
            "table": stream.raw_table,
            "records": report.fetched,
            "pages": report.pages,
            "chunks": report.chunks,
            "seconds": round(seconds, 2),
            "records_per_s": round(report.fetched / seconds),
            "connection_closes": len(closes) - closed,
            "close_s": round(sum(closes[closed:]), 2),
            **h.proc_memory_mb(),
        }
        streams.append(line)
        print(json.dumps(line), file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    return {"fetched": total, "seconds": round(seconds, 2), "streams": streams, **h.proc_memory_mb()}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--scale", type=int, default=100_000, help="CRM companies (~10.4 records each in all)")
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options.add_argument("--urls", help=argparse.SUPPRESS)
    options.add_argument("--db", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.worker:
        h.emit(worker(json.loads(args.urls), args.db))
        return 0

    import duckdb

    machine_before = h.machine()
    with h.scratch("bench_backfill_") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        manifest = h.generate(folder / "data", scale=args.scale, seed=args.seed)
        h.emit({"setup": "dataset", "scale": args.scale, "records": sum(manifest["counts"].values()),
                "generate_s": round(time.perf_counter() - began, 1)})  # fmt: skip
        db = folder / "backfill.duckdb"
        with h.sandbox(folder / "data") as server:
            sandbox_cpu = server.cpu_s()
            sandbox_before = server.memory_mb()
            run = h.run_worker([__file__, "--worker", "--urls", json.dumps(server.urls), "--db", str(db)])
            sandbox_after = server.memory_mb()
            sandbox_cpu = server.cpu_s() - sandbox_cpu
        with duckdb.connect(str(db), read_only=True) as connection:
            landed = {
                table: connection.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()
                for table in MANIFEST_FILE
            }
        db_mb = round(db.stat().st_size / 1e6, 1)

    result = run.result
    records = sum(rows for rows, _ in landed.values())
    mismatches = {
        table: {"landed": rows, "distinct": distinct, "served": manifest["counts"][MANIFEST_FILE[table]]}
        for table, (rows, distinct) in landed.items()
        if not rows == distinct == manifest["counts"][MANIFEST_FILE[table]]
    }
    summary = {
        "benchmark": "backfill_memory",
        "scale": args.scale,
        "records": records,  # rows landed in the nine raw tables
        "fetched": result[
            "fetched"
        ],  # records read (a few come twice: Zendesk's time-based export repeats its boundary)
        "seconds": result["seconds"],
        "records_per_s": round(records / result["seconds"]),
        "process_s": run.process_s,
        "cpu_s": run.cpu_s,
        "peak_rss_mb": result["peak_rss_mb"],
        "target_mb": TARGET_MB,
        # The target is about a 1,000,000-record backfill: a smaller one neither meets nor misses it.
        "target_met": result["peak_rss_mb"] <= TARGET_MB if records >= 1_000_000 else None,
        "landed_as_served": not mismatches,
        "mismatches": mismatches,
        "db_mb": db_mb,
        "sandbox": {"before_sync": sandbox_before, "after_sync": sandbox_after, "cpu_s": round(sandbox_cpu, 1)},
        "machine_before": machine_before,
        "machine_after": h.machine(),
        "streams": [
            {
                k: s[k]
                for k in ("stream", "records", "chunks", "seconds", "records_per_s", "close_s", "rss_mb", "peak_rss_mb")
            }
            for s in result["streams"]
        ],
    }
    h.emit(summary)
    print(f"\nbackfill of {summary['records']:,} records (9 streams, scale {args.scale:,}) into DuckDB:")
    for s in summary["streams"]:
        print(
            f"  {s['stream']:<24} {s['records']:>8,} records {s['seconds']:6.1f} s {s['records_per_s']:>6,}/s  "
            f"{s['chunks']:>4} chunks, {s['close_s']:5.1f} s closing DuckDB  "
            f"RSS {s['rss_mb']:4.0f} MB (peak so far {s['peak_rss_mb']:.0f})"
        )
    print(
        f"  total {summary['records']:,} records landed ({summary['fetched']:,} read) in {summary['seconds']} s "
        f"= {summary['records_per_s']:,} records/s; "
        f"peak RSS {summary['peak_rss_mb']:.0f} MB (target <= {TARGET_MB} MB: "
        f"{ {True: 'MET', False: 'NOT MET', None: 'n/a below 1,000,000 records'}[summary['target_met']] }); "
        f"landed exactly as served: {summary['landed_as_served']}\n"
        f"  sandbox (not counted): RSS {sandbox_after.get('rss_mb')} MB, peak {sandbox_after.get('peak_rss_mb')} MB",
        flush=True,
    )
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
