"""1,000,000 invoices against 1,000,000 payments: this project's set-based `invoices_paid_by_payments` rule
against datacompy 1.x's `PandasCompare` joined on the invoice id, on the same DuckDB warehouse, same run.

The data: `canonical.invoices` and `canonical.payments` laid out as the canonical build lays them out (the
field dictionary's columns), and `raw.billing_invoices` (one live raw record per invoice: the rule counts an
invoice in review as existing), all in one fresh DuckDB file. Every invoice is paid by one succeeded charge of
its own amount, except the planted defects, `--records / 1000` of each kind:

- `paid_invoice_short`: the charge is 1.00 short of the invoice's amount_paid;
- `invoice_overpaid`: the charge is 1.00 over the invoice's total;
- `payment_currency_mismatch`: the charge is in another currency than its (open, unpaid) invoice;
- `payment_for_missing_invoice`: the charge names an invoice that does not exist (its own invoice stays open
  and unpaid, so no other finding).

Each side runs in its own process (peak resident set its own), timed two ways:

- **in memory**: ours, the rule's SQL on a held warehouse connection whose tables were read once before
  (DuckDB's buffer pool holds them); datacompy, `PandasCompare` (with the group-by of payments per invoice it
  needs, and the classification of its mismatches into the four kinds) on frames already loaded. Median of
  `--repeat` runs.
- **with the load**: ours, from opening the warehouse file to the rows at fault in Python; datacompy, from
  opening the same file and loading both tables into pandas through `Warehouse.frame` to its classified result.

Ours also reports the whole check (`invoices_paid_by_payments`: the rule, the findings upserted into
`ops.reconciliation_findings`, the check's metadata) from a cold start. Both sides must find exactly the planted
defects (asserted, per kind).

    .venv/bin/python benchmarks/reconciliation_vs_datacompy.py                    # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/reconciliation_vs_datacompy.py --records 100000   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h

KINDS = ("paid_invoice_short", "invoice_overpaid", "payment_currency_mismatch", "payment_for_missing_invoice")
DEFECT_EVERY = 1000  # one defect of each kind per this many invoices


def planted(records: int) -> dict[str, int]:
    """How many of each kind the data holds: invoices n with n % DEFECT_EVERY == 1, 2, 3, 4."""
    return {kind: len(range(offset, records + 1, DEFECT_EVERY)) for offset, kind in enumerate(KINDS, start=1)}


def prepare(db: str, records: int) -> dict:
    """The three tables, written set-based in DuckDB from `range`."""
    from integration_assets.canonical.build import table_columns
    from integration_assets.core.warehouse import Warehouse, column_definitions
    from integration_assets.mapping.dictionary import load_dictionary
    from integration_assets.reconciliation.billing import INVOICES

    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    warehouse.ensure_ops_tables()
    warehouse.ensure_raw_table(INVOICES)
    dictionary = load_dictionary()
    kind = f"n % {DEFECT_EVERY}"
    currency = "CASE n % 3 WHEN 0 THEN 'EUR' WHEN 1 THEN 'USD' ELSE 'GBP' END"
    other_currency = "CASE n % 3 WHEN 0 THEN 'USD' ELSE 'EUR' END"
    total = "(10000 + (n * 7919) % 990000)"
    status = f"CASE WHEN {kind} IN (3, 4) THEN 'open' ELSE 'paid' END"
    with warehouse.held(), warehouse.transaction() as tx:
        for entity in ("invoices", "payments"):
            columns = table_columns(dictionary, entity)
            tx.execute(f"DROP TABLE IF EXISTS canonical.{entity}")
            tx.execute(f"CREATE TABLE canonical.{entity} ({', '.join(column_definitions(entity, columns, 'duckdb'))})")
        tx.execute(
            "INSERT INTO canonical.invoices (invoice_id, customer_id, status, currency, total, amount_due, "
            "amount_paid, amount_remaining, is_deleted, source_records) "
            f"SELECT 'billing:in_' || n, 'crm:' || (n % 50000), {status}, {currency}, {total}, {total}, "
            f"CASE WHEN {status} = 'paid' THEN {total} ELSE 0 END, CASE WHEN {status} = 'paid' THEN 0 ELSE {total} "
            "END, FALSE, 'billing/invoices/in_' || n FROM range(1, ?) AS t(n)",
            [records + 1],
        )
        tx.execute(
            "INSERT INTO canonical.payments (payment_id, invoice_id, status, currency, amount, amount_refunded, "
            "is_deleted, source_records) "
            f"SELECT 'billing:ch_' || n, CASE WHEN {kind} = 4 THEN 'billing:in_gone_' || n ELSE 'billing:in_' || n "
            f"END, 'succeeded', CASE WHEN {kind} = 3 THEN {other_currency} ELSE {currency} END, "
            f"{total} + CASE {kind} WHEN 1 THEN -100 WHEN 2 THEN 100 ELSE 0 END, 0, FALSE, "
            "'billing/charges/ch_' || n FROM range(1, ?) AS t(n)",
            [records + 1],
        )
        tx.execute(
            f"INSERT INTO {INVOICES} (id, version, payload, is_deleted, run_id) SELECT 'in_' || n, 1, "
            "CAST(json_object('id', 'in_' || n, 'object', 'invoice') AS JSON), FALSE, 'bench' "
            "FROM range(1, ?) AS t(n)",
            [records + 1],
        )
    return {"prepare_s": round(time.perf_counter() - started, 2)}


def worker_ours(db: str, repeat: int) -> dict:
    from integration_assets.core.warehouse import Warehouse
    from integration_assets.reconciliation.billing import invoice_payment_problems, invoices_paid_by_payments

    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    rows, invoices, payments = invoice_payment_problems(warehouse)  # a fresh connection: opens the file
    with_load = time.perf_counter() - started
    found = Counter(row["problem"] for row in rows)
    memory: list[float] = []
    with warehouse.held():
        invoice_payment_problems(warehouse)  # reads the tables into the held connection's buffer pool
        for _ in range(repeat):
            started = time.perf_counter()
            again, _, _ = invoice_payment_problems(warehouse)
            memory.append(time.perf_counter() - started)
            assert Counter(row["problem"] for row in again) == found
    started = time.perf_counter()
    check = invoices_paid_by_payments(Warehouse.from_url(db))
    check_s = time.perf_counter() - started
    return {
        "side": "ours",
        "invoices": invoices,
        "payments": payments,
        "found": dict(found),
        "with_load_s": round(with_load, 3),
        "in_memory_s": round(statistics.median(memory), 3),
        "in_memory_runs_s": [round(s, 3) for s in memory],
        "check_with_findings_s": round(check_s, 3),
        "check_new_findings": check.metadata["new_findings"].value,
    }


def _datacompy(invoices, payments) -> tuple[dict[str, int], float]:
    """The rule as datacompy sees it: each invoice's amount_paid (and currency, total) against its succeeded
    payments' net sum per invoice, joined on the invoice id; its mismatches and one-sided rows sorted into the
    rule's kinds. Returns the counts and the seconds of `PandasCompare` alone."""
    import datacompy

    paid = payments[payments["status"] == "succeeded"].assign(
        paid=lambda f: f["amount"] - f["amount_refunded"].fillna(0)
    )
    net = paid.groupby("invoice_id", sort=False).agg(currency=("currency", "first"), paid=("paid", "sum"))
    left = invoices[["invoice_id", "currency", "amount_paid", "total", "status"]].rename(
        columns={"amount_paid": "paid"}
    )
    started = time.perf_counter()
    compare = datacompy.PandasCompare(
        left, net.reset_index(), join_columns="invoice_id", df1_name="invoices", df2_name="payments"
    )
    compare_s = time.perf_counter() - started
    # its mismatching rows (currency or paid amount differ), with the invoice's own status and total beside them
    mismatched = compare.all_mismatch().merge(left[["invoice_id", "status", "total"]], on="invoice_id")
    currency = mismatched["currency_invoices"] != mismatched["currency_payments"]
    same = mismatched[~currency]
    unpaid = compare.df1_unq_rows  # invoices no payment names: short when they say they were paid
    found = {
        "paid_invoice_short": int(((same["status"] == "paid") & (same["paid_payments"] < same["paid_invoices"])).sum())
        + int(((unpaid["status"] == "paid") & (unpaid["paid"] > 0)).sum()),
        "invoice_overpaid": int((same["paid_payments"] > same["total"]).sum()),
        "payment_currency_mismatch": int(currency.sum()),
        "payment_for_missing_invoice": len(compare.df2_unq_rows),
    }
    return found, compare_s


INVOICE_SQL = "SELECT invoice_id, status, currency, total, amount_paid FROM canonical.invoices WHERE NOT is_deleted"
PAYMENT_SQL = (
    "SELECT payment_id, invoice_id, status, currency, amount, amount_refunded FROM canonical.payments "
    "WHERE NOT is_deleted AND invoice_id IS NOT NULL"
)


def worker_datacompy(db: str, repeat: int) -> dict:
    import datacompy

    from integration_assets.core.warehouse import Warehouse

    started = time.perf_counter()
    warehouse = Warehouse.from_url(db)
    with warehouse.held():
        invoices, payments = warehouse.frame(INVOICE_SQL), warehouse.frame(PAYMENT_SQL)
    load_s = time.perf_counter() - started
    found, _ = _datacompy(invoices, payments)
    with_load = time.perf_counter() - started
    memory: list[float] = []
    compare_only: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        again, compare_s = _datacompy(invoices, payments)
        memory.append(time.perf_counter() - started)
        compare_only.append(compare_s)
        assert again == found
    return {
        "side": "datacompy",
        "datacompy": datacompy.__version__,
        "invoices": len(invoices),
        "payments": len(payments),
        "found": found,
        "load_s": round(load_s, 3),
        "with_load_s": round(with_load, 3),
        "in_memory_s": round(statistics.median(memory), 3),
        "in_memory_runs_s": [round(s, 3) for s in memory],
        "compare_only_s": round(statistics.median(compare_only), 3),
    }


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--records", type=int, default=1_000_000, help="invoices, and as many payments")
    options.add_argument("--repeat", type=int, default=3, help="in-memory runs per side (median reported)")
    options.add_argument("--worker", choices=("prepare", "ours", "datacompy"), help=argparse.SUPPRESS)
    options.add_argument("--db", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.worker:
        work = {"prepare": lambda: prepare(args.db, args.records), "ours": lambda: worker_ours(args.db, args.repeat)}
        work["datacompy"] = lambda: worker_datacompy(args.db, args.repeat)
        h.emit({**work[args.worker](), **h.proc_memory_mb()})
        return 0

    expected = planted(args.records)
    h.emit({"machine": h.machine(), "records": args.records, "planted": expected})
    script = str(Path(__file__).resolve())
    results: dict[str, dict] = {}
    with h.scratch("recon-bench-") as folder:
        db = str(Path(folder) / "warehouse.duckdb")
        common = ["--records", str(args.records), "--repeat", str(args.repeat), "--db", db]
        prepared = h.run_worker([script, "--worker", "prepare", *common])
        h.emit({"prepare": prepared.result, "process_s": prepared.process_s})
        for side in ("ours", "datacompy"):
            run = h.run_worker([script, "--worker", side, *common])
            results[side] = {**run.result, "process_s": run.process_s, "process_cpu_s": run.cpu_s}
            h.emit(results[side])
    for side, figures in results.items():
        assert figures["found"] == expected, (side, figures["found"], expected)
    ours, theirs = results["ours"], results["datacompy"]
    summary = {
        "summary": "invoices_paid_by_payments vs datacompy.PandasCompare",
        "records": args.records,
        "both_found_every_planted_defect": True,
        "in_memory_s": {"ours": ours["in_memory_s"], "datacompy": theirs["in_memory_s"]},
        "with_load_s": {"ours": ours["with_load_s"], "datacompy": theirs["with_load_s"]},
        "speedup_in_memory": round(theirs["in_memory_s"] / ours["in_memory_s"], 2),
        "speedup_with_load": round(theirs["with_load_s"] / ours["with_load_s"], 2),
        "peak_rss_mb": {"ours": ours["peak_rss_mb"], "datacompy": theirs["peak_rss_mb"]},
        "target_met": ours["in_memory_s"] <= theirs["in_memory_s"] and ours["with_load_s"] <= theirs["with_load_s"],
    }
    h.emit(summary)
    return 0 if summary["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
