"""Completeness: the vendor's own count of live records against the live rows loaded into each raw table.

One check per source asset. Each system's `totals.py` (in `systems/<role>/`) asks its vendor read-only:
HubSpot and Zendesk answer a count in one call; Stripe has no count, so its ids are listed, which also names
the exact records missing or extra. With a count only, a missing record and an extra one in the same stream
cancel out; a full refresh of the asset reloads the stream either way. A sync that has just listed every id
(Stripe's full pass, `Chunk.listed_all`) hands its list to the check, which compares it with what landed rather
than reading the same pages a second time at the vendor's rate limit (at a million records, 75 s of Stripe).

A record the sync quarantined (`core/quarantine.py`: a NUL character, over the size limit, refused by the
database) is live at the vendor yet not in the raw table, and no refresh stores it: it is counted apart
(`quarantined`), never as missing; its review item in `ops.review_queue` says how to fix it at the vendor.
"""

import time
from typing import Any

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity

from integration_assets.core import quarantine
from integration_assets.core.catalog import StreamSpec
from integration_assets.core.dagster_adapter import latest_check_evaluation
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.stream_check import StreamCheck, StreamCheckRun
from integration_assets.reconciliation.common import diff_row, outcome

__all__ = ["CompletenessCheck", "completeness_problems"]

KINDS = ("missing_records", "extra_records")
COUNTED_BY = "counted_by"  # metadata: "count" (the vendor's own total) or "listing" (every id listed)
LISTED_BY = "listed_by"  # metadata of a listing: the step's own sync (a full pass lists every id) or the check


def completeness_problems(
    stream: StreamSpec,
    vendor_total: int,
    vendor_ids: frozenset[str] | None,
    loaded_ids: set[str],
    quarantined_ids: set[str] | frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Rows for records the vendor holds that the table lacks, and live rows the vendor no longer holds.

    With the vendor's ids each record is named (and linked); with a count only, one row says how many. A record
    in quarantine (`quarantined_ids`) is accounted for, not missing: its review item already holds it."""
    rows: list[dict[str, Any]] = []
    base = {"system": stream.role, "object_type": stream.object_type, "field": "", "other_record": ""}

    def named(rid: str, problem: str, this_side: str, other_side: str) -> dict[str, Any]:
        return diff_row((stream.role, stream.object_type, rid), problem, "", this_side, other_side)

    if vendor_ids is not None:
        missing = vendor_ids - loaded_ids - quarantined_ids
        rows += [named(rid, "missing_records", "not loaded", "live") for rid in sorted(missing)]
        rows += [named(rid, "extra_records", "loaded live", "not listed") for rid in sorted(loaded_ids - vendor_ids)]
        return rows
    held = len(quarantined_ids - loaded_ids)  # live at the vendor, in quarantine rather than the raw table
    difference = vendor_total - len(loaded_ids) - held
    if difference:
        rows.append(
            {
                **base,
                "id": None,
                "problem": "missing_records" if difference > 0 else "extra_records",
                "field": "live records",
                "this_side": f"{len(loaded_ids)} loaded" + (f", {held} quarantined" if held else ""),
                "other_side": f"{vendor_total} at the vendor",
            }
        )
    return rows


def _count_of(rows: list[dict[str, Any]], kind: str, vendor_total: int, accounted: int) -> int:
    """How many of `kind`; with a count only, from the gap between the vendor's total and what is accounted
    for (loaded, or quarantined and not loaded)."""
    if any(r["id"] is not None for r in rows):
        return sum(1 for r in rows if r["problem"] == kind)
    gap = vendor_total - accounted
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

    def skip_reason(self, run: StreamCheckRun) -> str | None:
        """A vendor counted by listing every id (Stripe) is not listed again after a sync that read only
        changes while its last listing passed recently (`listing_recount_hours`): at a million records that
        listing cost more than the sync itself. A full listing, a check run alone, every count-only vendor and
        every run after a failing listing count."""
        if run.landed is None or run.landed.report.mode == "full":
            return None
        hours = load_monitoring().reconciliation.listing_recount_hours
        last = latest_check_evaluation(run.instance, AssetCheckKey(run.stream.asset_key, self.name))
        if last is None:
            return None
        evaluation, planned_at = last
        counted_by = evaluation.metadata.get(COUNTED_BY)
        age_hours = (time.time() - planned_at) / 3600
        if not evaluation.passed or counted_by is None or counted_by.value != "listing" or age_hours >= hours:
            return None  # a failing listing is repeated every run, so a fix shows as soon as it lands
        return (
            f"{run.stream.vendor} has no count, so its ids are listed; the last listing passed "
            f"{age_hours:.1f} h ago and this sync read only changes (listed again after {hours:g} h, "
            "`listing_recount_hours` in monitoring.yaml, on every full listing, and on every run while it fails)"
        )

    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult:
        stream, warehouse = run.stream, run.warehouse
        started = time.monotonic()
        listing = run.landed.report.listed if run.landed is not None else None
        if listing is not None:  # this step's sync just listed every live id: the same pages, read once
            vendor_total, vendor_ids, calls = len(listing), listing, []
        else:
            vendor_total, vendor_ids, calls = self._count(run)
        counting = {"counting_api_calls": len(calls), "counting_seconds": round(time.monotonic() - started, 3)}
        warehouse.ensure_raw_table(stream.raw_table)
        loaded = {str(r[0]) for r in warehouse.query(f"SELECT id FROM {stream.raw_table} WHERE NOT is_deleted")}
        held = quarantine.quarantined_ids(warehouse, stream)
        if vendor_ids is not None:
            held &= vendor_ids  # only the quarantined records the vendor still lists stand for missing ones
        held -= loaded  # an older version is loaded: counted there
        rows = completeness_problems(stream, vendor_total, vendor_ids, loaded, held)
        counts = {kind: _count_of(rows, kind, vendor_total, len(loaded) + len(held)) for kind in KINDS}
        aside = (
            f", {len(held)} quarantined (not storable; see their items in ops.review_queue and their raw "
            "content in ops.quarantine)"
            if held
            else ""
        )
        return outcome(
            system=stream.role,
            rows=rows,
            kinds=(),
            ok_summary=f"{stream.key}: {vendor_total} live at the vendor, {len(loaded)} loaded{aside}.",
            summary=f"{stream.key}: {vendor_total} live at the vendor, {len(loaded)} loaded{aside} "
            f"({counts['missing_records']} missing, {counts['extra_records']} extra)",
            next_action=f"Run {stream.key} again; if the difference stays, materialize it with "
            "`full_refresh: true` and look at its run log for skipped pages.",
            severity=AssetCheckSeverity.ERROR,
            extra_counts={
                **counts,
                "quarantined": len(held),
                "vendor_total": vendor_total,
                "loaded_live": len(loaded),
                **counting,
            },
            extra_text={
                COUNTED_BY: "count" if vendor_ids is None else "listing",
                LISTED_BY: "the sync of this step" if listing is not None else "this check",
            },
        )

    @staticmethod
    def _count(run: StreamCheckRun) -> tuple[int, frozenset[str] | None, list]:
        """The vendor's count (and ids, where it can only list them), asked read-only; the calls it took are
        logged with the others."""
        client = run.client()
        try:
            vendor_total, vendor_ids = run.live_total(client, run.stream.object_type)
        finally:
            client.close()
            calls = client.call_log.drain()
            if calls:
                with run.warehouse.transaction() as tx:
                    tx.append("ops.api_calls", [call.as_row() for call in calls])
        return vendor_total, vendor_ids, calls
