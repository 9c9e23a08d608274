"""Completeness: the vendor's own count of live records against the live rows loaded into each raw table.

One check per source asset. Each system's `totals.py` (in `systems/<role>/`) asks its vendor read-only:
HubSpot and Zendesk answer a count in one call; Stripe has no count, so its ids are listed, which also names
the exact records missing or extra. With a count only, a missing record and an extra one in the same stream
cancel out; a full refresh of the asset reloads the stream either way.
"""

import time
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.stream_check import StreamCheck, StreamCheckRun
from integration_assets.reconciliation.common import diff_row, outcome

__all__ = ["CompletenessCheck", "completeness_problems"]

KINDS = ("missing_records", "extra_records")


def completeness_problems(
    stream: StreamSpec, vendor_total: int, vendor_ids: frozenset[str] | None, loaded_ids: set[str]
) -> list[dict[str, Any]]:
    """Rows for records the vendor holds that the table lacks, and live rows the vendor no longer holds.

    With the vendor's ids each record is named (and linked); with a count only, one row says how many."""
    rows: list[dict[str, Any]] = []
    base = {"system": stream.role, "object_type": stream.object_type, "field": "", "other_record": ""}

    def named(rid: str, problem: str, this_side: str, other_side: str) -> dict[str, Any]:
        return diff_row((stream.role, stream.object_type, rid), problem, "", this_side, other_side)

    if vendor_ids is not None:
        rows += [named(rid, "missing_records", "not loaded", "live") for rid in sorted(vendor_ids - loaded_ids)]
        rows += [named(rid, "extra_records", "loaded live", "not listed") for rid in sorted(loaded_ids - vendor_ids)]
        return rows
    difference = vendor_total - len(loaded_ids)
    if difference:
        rows.append(
            {
                **base,
                "id": None,
                "problem": "missing_records" if difference > 0 else "extra_records",
                "field": "live records",
                "this_side": f"{len(loaded_ids)} loaded",
                "other_side": f"{vendor_total} at the vendor",
            }
        )
    return rows


def _count_of(rows: list[dict[str, Any]], kind: str, vendor_total: int, loaded: int) -> int:
    if any(r["id"] is not None for r in rows):
        return sum(1 for r in rows if r["problem"] == kind)
    gap = vendor_total - loaded
    return max(gap, 0) if kind == "missing_records" else max(-gap, 0)


class CompletenessCheck(StreamCheck):
    """Counted in the stream's own step, right after it lands: counted any later, records created at the
    vendor since the sync would read as missing. It reports what its own counting cost (calls, seconds)."""

    name = "complete_against_vendor"

    def description(self, stream: StreamSpec) -> str:
        return (
            f"The vendor's own count of live {stream.object_type} equals the live rows in `{stream.raw_table}` "
            "(read-only calls under the source connector's grant, in the stream's own step)."
        )

    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult:
        stream, warehouse = run.stream, run.warehouse
        started = time.monotonic()
        client = run.client()
        try:
            vendor_total, vendor_ids = run.live_total(client, stream.object_type)
        finally:
            client.close()
            calls = client.call_log.drain()
            if calls:
                with warehouse.transaction() as tx:
                    tx.append("ops.api_calls", [call.as_row() for call in calls])
        counting = {"counting_api_calls": len(calls), "counting_seconds": round(time.monotonic() - started, 3)}
        warehouse.ensure_raw_table(stream.raw_table)
        loaded = {str(r[0]) for r in warehouse.query(f"SELECT id FROM {stream.raw_table} WHERE NOT is_deleted")}
        rows = completeness_problems(stream, vendor_total, vendor_ids, loaded)
        counts = {kind: _count_of(rows, kind, vendor_total, len(loaded)) for kind in KINDS}
        return outcome(
            system=stream.role,
            rows=rows,
            kinds=(),
            ok_summary=f"{stream.key}: {vendor_total} live at the vendor, {len(loaded)} loaded.",
            summary=f"{stream.key}: {vendor_total} live at the vendor, {len(loaded)} loaded "
            f"({counts['missing_records']} missing, {counts['extra_records']} extra)",
            next_action=f"Run {stream.key} again; if the difference stays, materialize it with "
            "`full_refresh: true` and look at its run log for skipped pages.",
            severity=AssetCheckSeverity.ERROR,
            extra_counts={**counts, "vendor_total": vendor_total, "loaded_live": len(loaded), **counting},
        )
