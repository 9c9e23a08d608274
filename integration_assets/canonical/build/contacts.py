"""People: CRM contacts and Zendesk users grouped by identity into one row each, under the client their
organization resolves to; a Zendesk user linked to no contact is a person of its own (`support:<id>`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build.merge import _merge_group
from integration_assets.canonical.build.records import (
    Built,
    Stream,
    _accept,
    _customer_ref,
    _flag_ignored,
    _Reader,
    match_key,
    table_columns,
)
from integration_assets.canonical.validate import EMPTY, RecordRead, remembered
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.mapping.schema import FieldDictionary


def build_contacts(reader: _Reader, built: Built) -> None:
    """The people, placed under the clients the first phase matched their organizations to."""
    d, raw = reader.d, reader.raw
    customer_matches = reader.matches("customers")  # the clients' phase resolved them
    contacts, users = ("crm", "contacts"), ("support", "users")
    matches = reader.matches("contacts")
    groups: dict[str, list[tuple[Stream, str, RecordRead]]] = defaultdict(list)
    for rid in raw.get(contacts, {}):
        if _flag_ignored(reader, contacts, rid):
            continue
        values = reader.check("contacts", contacts, rid)
        if not reader.in_review(contacts, rid):
            groups[namespaced_id("crm", rid)].append((contacts, rid, values))
    per_target: dict[str, list[str]] = defaultdict(list)
    how: dict[str, str] = {}
    user_reads: dict[str, RecordRead] = {}
    for rid, record in raw.get(users, {}).items():
        if _flag_ignored(reader, users, rid):
            continue
        values = reader.check("contacts", users, rid)
        match = matches.get((*users, rid), ident.Match(None, "unmatched"))
        if match.reason_code and not record["is_deleted"]:
            reader.flag(users, rid, match.reason_code, match.detail, "contact_id")
            continue
        if reader.in_review(users, rid):
            continue
        ref = user_client(d, record["payload"], customer_matches)
        values.values["customer_id"].value = EMPTY if ref is None else ref
        user_reads[rid] = values
        how[rid] = match.matched_by
        key = match.target or namespaced_id("support", record["payload"].get("id", rid))
        if match.target and not record["is_deleted"]:
            per_target[match.target].append(rid)
        groups[key].append((users, rid, values))
    for target, rids in per_target.items():
        undecided = [r for r in rids if how[r] != "decision"]
        if len(undecided) > 1:
            for r in undecided:
                reader.flag(users, r, "duplicate_record", f"{len(undecided)} Zendesk users are contact {target}.")
    rows = []
    for key, members in groups.items():
        members = [m for m in members if not reader.in_review(m[0], m[1])]
        if not members:
            continue
        derived: dict[str, Any] = {
            "contact_id": key if key.startswith("crm:") else EMPTY,
            "support_user_id": next(
                (namespaced_id("support", raw[users][r]["payload"].get("id", r)) for s, r, _ in members if s == users),
                EMPTY,
            ),
        }
        row, kept = _merge_group(d, reader, raw, "contacts", members, derived)
        if not kept:
            continue
        row["person_id"] = key
        rows.append(row)
        for s, r in kept:
            _accept(built, s, r, "canonical.contacts", key, how.get(r, "own") if s == users else "own")
    built.tables["contacts"] = pd.DataFrame(rows, columns=list(table_columns(d, "contacts")))


def user_client(d: FieldDictionary, payload: dict, customer_matches: ident.Matches) -> Any:
    """The client a Zendesk user's organization resolves to (EMPTY: it names none; None: not resolved)."""
    return _customer_ref(customer_matches, "support", "organizations", _organization(d, payload))


def user_organization(d: FieldDictionary, payload: dict) -> tuple[str, str, str] | None:
    """The organization whose identity match gives a Zendesk user its client (`user_client`)."""
    return match_key("support", "organizations", _organization(d, payload))


def _organization(d: FieldDictionary, payload: dict) -> Any:
    source = remembered(
        _ORGANIZATION_SOURCE, d, (), lambda: d.entity("contacts").field("customer_id").sources["support"]
    )
    return ident.resolve_path(payload, source.path or "")


_ORGANIZATION_SOURCE: dict[tuple, tuple[Any, Any]] = {}
