"""Deals: one row per CRM deal, with the status of the one invoice that bills it (billing's invoices are
only looked up here); a deal billed by several invoices is a conflict for a person to settle."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from integration_assets.canonical.build.records import OWN, Built, _Reader
from integration_assets.canonical.build.single import build_single
from integration_assets.canonical.validate import EMPTY, RecordRead, is_empty


def build_deals(reader: _Reader, built: Built) -> None:
    raw = reader.raw
    stream = OWN["deals"][0]
    invoice_status: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for rid in raw.get(("billing", "invoices"), {}):
        values = reader.ok("invoices", ("billing", "invoices"), rid)
        if values is not None and not raw[("billing", "invoices")][rid]["is_deleted"]:
            deal, status = values.get("deal_id"), values.get("status")
            if not is_empty(deal) and not is_empty(status):
                invoice_status[deal].add((rid, status))

    def invoice(rid: str, values: RecordRead, derived: dict[str, Any]) -> None:
        found = invoice_status.get(values.get("deal_id"), set())
        if len({s for _, s in found}) > 1 or len(found) > 1:
            reader.flag(stream, rid, "conflicting_values", f"invoice_status: {len(found)} invoices bill this deal.")
        derived["invoice_status"] = next(iter(found))[1] if len(found) == 1 else EMPTY

    build_single(reader, built, "deals", {}, invoice)
