"""Clients: CRM companies, billing customers and Zendesk organizations grouped by identity into one row each,
with the plan and lifetime value derived from the client's won deals; then their people (`contacts`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build.merge import _merge_group
from integration_assets.canonical.build.records import Built, Stream, _accept, _flag_ignored, _Reader, table_columns
from integration_assets.canonical.validate import EMPTY, RecordRead, is_empty
from integration_assets.mapping.normalize import Money, namespaced_id
from integration_assets.mapping.schema import FieldDictionary

PLANS = ("starter", "professional", "enterprise")  # by won deals: 0, 1, 2 or more (customers.plan's rule)


def build_customers(reader: _Reader, built: Built) -> None:
    """The clients; the people's phase (`build_contacts`) sees their identity matches."""
    d, raw = reader.d, reader.raw
    companies = ("crm", "companies")
    customers_ = {"billing": ("billing", "customers"), "support": ("support", "organizations")}
    # --- companies: own rules, then duplicates among live ones
    reads: dict[Stream, dict[str, RecordRead]] = defaultdict(dict)
    for rid in raw.get(companies, {}):
        if not _flag_ignored(reader, companies, rid):
            reads[companies][rid] = reader.check("customers", companies, rid)
    if reader.duplicates is None:
        reader.duplicates = ident.duplicates(
            d,
            "customers",
            {
                rid: compared_values(d, values, raw[companies][rid]["payload"])
                for rid, values in reads[companies].items()
                if not raw[companies][rid]["is_deleted"]
            },
        )
    for rid, others in reader.duplicates.items():
        if rid not in raw[companies]:  # a build of some records only is given every company's
            continue
        reader.flag(
            companies,
            rid,
            d.identity["customers"].duplicates.on_match,  # type: ignore[union-attr]
            f"Same name and domain as companies {', '.join(others)}: the same client recorded twice?",
        )
    # --- billing customers and support organizations: identity
    matches = reader.matches("customers")
    groups: dict[str, list[tuple[Stream, str, RecordRead]]] = defaultdict(list)
    for rid, values in reads[companies].items():
        if not reader.in_review(companies, rid):
            groups[namespaced_id("crm", rid)].append((companies, rid, values))
    how: dict[tuple[Stream, str], str] = {}
    for system, stream in customers_.items():
        per_target: dict[str, list[str]] = defaultdict(list)
        for rid, record in raw.get(stream, {}).items():
            if _flag_ignored(reader, stream, rid):
                continue
            values = reader.check("customers", stream, rid)
            match = matches[(*stream, rid)]
            if match.reason_code and not record["is_deleted"]:
                reader.flag(stream, rid, match.reason_code, match.detail, "customer_id")
                continue
            if reader.in_review(stream, rid):
                continue
            if match.target is None:  # a deleted record nobody can place
                _accept(built, stream, rid, "canonical.customers", None, "deleted")
                continue
            reads[stream][rid] = values
            how[(stream, rid)] = match.matched_by
            if not record["is_deleted"]:
                per_target[match.target].append(rid)
        for target, rids in per_target.items():
            undecided = [r for r in rids if how[(stream, r)] != "decision"]
            if len(undecided) > 1:
                for r in undecided:
                    reader.flag(
                        stream,
                        r,
                        "duplicate_record",
                        f"{len(undecided)} {system} records resolve to client {target}: "
                        + ", ".join(sorted(undecided)),
                        f"{system}_id",
                    )
        for rid, values in reads[stream].items():
            if not reader.in_review(stream, rid):
                groups[matches[(*stream, rid)].target].append((stream, rid, values))  # type: ignore[index]
    # --- derived from the client's accepted deals
    won: dict[str, list[Money]] = defaultdict(list)
    for rid, record in raw.get(("crm", "deals"), {}).items():
        deal = reader.ok("deals", ("crm", "deals"), rid)
        if deal is None or record["is_deleted"] or deal.get("stage") != "won" or is_empty(deal.get("customer_id")):
            continue
        if isinstance(deal.get("amount"), Money):
            won[deal.get("customer_id")].append(deal.get("amount"))
    rows = []
    for key, members in groups.items():
        amounts = won.get(key, [])
        currencies = {m.currency for m in amounts}
        derived: dict[str, Any] = {"plan": PLANS[min(len(amounts), len(PLANS) - 1)]}
        if len(currencies) > 1:
            for stream, rid, _ in members:
                if stream == companies:
                    reader.flag(stream, rid, "mixed_currencies", f"Won deals in {sorted(currencies)}: not added up.")
            derived["lifetime_value"] = EMPTY
        elif amounts:
            derived["lifetime_value"] = Money(sum(m.minor for m in amounts), next(iter(currencies)))
        else:
            derived["lifetime_value"] = EMPTY
        derived["customer_id"] = key
        for system, stream in customers_.items():
            ids = [r for s, r, _ in members if s == stream and not raw[stream][r]["is_deleted"]]
            ids.sort(key=lambda r: how.get((stream, r)) == "decision")
            field_name = "billing_customer_id" if system == "billing" else "support_organization_id"
            derived[field_name] = namespaced_id(system, ids[0]) if ids else EMPTY
        row, kept = _merge_group(d, reader, raw, "customers", members, derived)
        if not kept:
            continue
        if isinstance(derived["lifetime_value"], Money):
            row["lifetime_value_currency"] = derived["lifetime_value"].currency
        rows.append(row)
        for s, r in kept:
            _accept(built, s, r, "canonical.customers", key, how.get((s, r), "own"))
    built.tables["customers"] = pd.DataFrame(rows, columns=list(table_columns(d, "customers")))


def compared_values(d: FieldDictionary, read: RecordRead | dict[str, Any], payload: dict) -> dict[str, Any]:
    """The values of a live company the duplicate rule compares: a value its own rule refused still counts
    as written (the same client recorded twice), so the raw text stands in for an empty read."""
    rule = d.identity["customers"].duplicates
    return {
        name: read.get(name) if not is_empty(read.get(name)) else _raw_text(payload, d, name)
        for name in (rule.match_all if rule else ())
    }


def _raw_text(payload: dict, d: FieldDictionary, name: str) -> Any:
    source = d.entity("customers").field(name).sources.get("crm")
    return ident.resolve_path(payload, source.path) if source is not None and source.path else EMPTY
