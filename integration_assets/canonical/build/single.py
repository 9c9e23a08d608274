"""Entities built from one stream, one canonical row per record (deals, invoices, payments, tickets): the
record's references to clients and people are resolved through identity; an entity adds its own values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from integration_assets.canonical import identity as ident
from integration_assets.canonical.build.merge import _merge
from integration_assets.canonical.build.records import (
    OWN,
    Built,
    Stream,
    _accept,
    _column,
    _customer_ref,
    _flag_ignored,
    _Reader,
    match_key,
    table_columns,
)
from integration_assets.canonical.validate import EMPTY, RecordRead, remembered
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.mapping.schema import FieldDictionary

# An entity's own derived values for one record: (record id, its read, the derived values to add to).
Extra = Callable[[str, RecordRead, dict[str, Any]], None]


def build_single(
    reader: _Reader,
    built: Built,
    entity: str,
    matches: ident.Matches,
    extra: Extra | None = None,
) -> None:
    """The entity's table from its own stream; `matches` resolve its references, `extra` adds its own values."""
    d, raw = reader.d, reader.raw
    stream = OWN[entity][0]
    fields = d.entity(entity).fields
    key_field = d.entity(entity).key[0]
    rows = []
    for rid, record in raw.get(stream, {}).items():
        if _flag_ignored(reader, stream, rid):
            continue
        values = reader.check(entity, stream, rid)
        payload = record["payload"]
        derived: dict[str, Any] = {}
        for name, (ref, raw_id) in references(d, entity, stream, payload, matches).items():
            if ref is None:
                reader.flag(
                    stream,
                    rid,
                    "unresolved_reference",
                    f"{name}: {raw_id} has no resolved client (its record is in review or unknown).",
                    name,
                )
            derived[name] = EMPTY if ref is None else ref
        if extra is not None:
            extra(rid, values, derived)
        row, problems = _merge(reader, entity, [(stream, rid, values)], derived)
        for name, reason, detail in problems:
            reader.flag(stream, rid, reason, detail, name)
        if reader.in_review(stream, rid):
            continue
        row["is_deleted"] = bool(record["is_deleted"])
        row["source_records"] = f"{stream[0]}/{stream[1]}/{rid}"
        rows.append(row)
        _accept(built, stream, rid, f"canonical.{entity}", row[_column(fields[key_field], entity)], "own")
    built.tables[entity] = pd.DataFrame(rows, columns=list(table_columns(d, entity)))


def references(
    d: FieldDictionary,
    entity: str,
    stream: Stream,
    payload: dict,
    matches: ident.Matches,
) -> dict[str, tuple[Any, Any]]:
    """The record's references to clients and people, resolved through identity: field -> (the canonical id,
    EMPTY when the record names none, None when the one it names has no resolved client; the raw id)."""
    found: dict[str, tuple[Any, Any]] = {}
    for name, kind, path in remembered(_REFERENCES, d, (entity, stream), lambda: _references(d, entity, stream)):
        raw_id = ident.resolve_path(payload, path)
        if kind == "customers":
            found[name] = (_customer_ref(matches, stream[0], _ref_object(stream[0]), raw_id), raw_id)
        else:
            found[name] = (_person_ref(matches, raw_id), raw_id)
    return found


_REFERENCES: dict[tuple, tuple[Any, Any]] = {}


def _references(d: FieldDictionary, entity: str, stream: Stream) -> list[tuple[str, str, str]]:
    """(field, customers or contacts, path) of each reference the entity's records of `stream` resolve."""
    found = []
    for name, spec in d.entity(entity).fields.items():
        source = spec.sources.get(stream[0])
        if source is None or not spec.references:
            continue
        if spec.references == "customers" and source.id_system is None and stream[0] != "crm":
            found.append((name, "customers", source.path or ""))
        elif spec.references == "contacts" and stream[0] == "support":
            found.append((name, "contacts", source.path or ""))
    return found


def referenced(d: FieldDictionary, entity: str, stream: Stream, payload: dict) -> list[tuple[str, str, str]]:
    """The records whose identity matches the record's references resolve through (`references`)."""
    found = []
    for _, kind, path in remembered(_REFERENCES, d, (entity, stream), lambda: _references(d, entity, stream)):
        system, object_type = (stream[0], _ref_object(stream[0])) if kind == "customers" else ("support", "users")
        key = match_key(system, object_type, ident.resolve_path(payload, path))
        if key is not None:
            found.append(key)
    return found


def _person_ref(matches: ident.Matches, raw_id: Any) -> Any:
    """A Zendesk user id as the canonical person key: its CRM contact when linked, else support:<id>."""
    key = match_key("support", "users", raw_id)
    if key is None:
        return EMPTY
    found = matches.get(key)
    if found is not None and found.target:
        return found.target
    return namespaced_id("support", raw_id if isinstance(raw_id, int) else key[2])


def _ref_object(system: str) -> str:
    return {"billing": "customers", "support": "organizations"}[system]
