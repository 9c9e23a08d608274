"""Several accepted records to one canonical row, field by field with the dictionary's conflict and empty
rules; what they cannot settle comes back as review problems for the caller to flag."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from integration_assets.canonical.build.records import Stream, _cell, _column, _Reader, table_columns
from integration_assets.canonical.validate import EMPTY, RecordRead, is_empty
from integration_assets.mapping.normalize import Money
from integration_assets.mapping.schema import FieldDictionary


def _updated(dictionary: FieldDictionary, entity: str, system: str, values: RecordRead) -> datetime | None:
    for name, spec in dictionary.entity(entity).fields.items():
        if spec.type == "instant" and name.endswith("updated_at") and system in spec.sources:
            value = values.get(name)
            return value if isinstance(value, datetime) else None
    return None


def _merge(
    reader: _Reader,
    entity: str,
    members: list[tuple[Stream, str, RecordRead]],
    derived: dict[str, Any],
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """One canonical row from the accepted records of one group; returns (row, review problems)."""
    d = reader.d
    spec_entity = d.entity(entity)
    row: dict[str, Any] = {}
    problems: list[tuple[str, str, str]] = []  # (field, reason, detail)
    by_system: dict[str, list[RecordRead]] = defaultdict(list)
    for stream, _, values in members:
        by_system[stream[0]].append(values)
    for name, spec in spec_entity.fields.items():
        column = _column(spec, entity)
        if name in derived:
            value = derived[name]
        else:
            found = [
                (system, values)
                for system in spec.sources
                for values in by_system.get(system, [])
                if not is_empty(values.get(name))
            ]
            value = EMPTY
            if found:
                if spec.conflict == "review" and len({str(v.get(name)) for _, v in found}) > 1:
                    problems.append((name, "conflicting_values", f"{name}: the sources disagree."))
                elif spec.conflict == "newest_wins":
                    stamped = [(_updated(d, entity, s, v), s == spec.owner, v.get(name)) for s, v in found]
                    stamped.sort(key=lambda t: (t[0] is not None, t[0] or datetime.min, t[1]), reverse=True)
                    value = stamped[0][2]
                else:
                    owners = [v.get(name) for s, v in found if s == spec.owner]
                    value = owners[0] if owners else found[0][1].get(name)
        if is_empty(value):
            if spec.empty == "default":
                value = spec.default
            elif (
                spec.empty == "review"
                and name not in spec_entity.key
                and name not in derived
                and not any(p.field == name for _, _, values in members for p in values.problems)
            ):  # a value that failed its own rule is already in review for that reason
                problems.append((name, "missing_required_field", f"{name} is empty in every source."))
        if isinstance(value, Money):
            row[column] = value.minor
            currency_column = f"{column}_currency"
            if currency_column in table_columns(d, entity):
                row[currency_column] = value.currency
        else:
            row[column] = _cell(value)
    return row, problems


def _merge_group(d, reader, raw, entity: str, members, derived: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """One canonical row from the records resolved to it; a conflict flags the owner's records for review.

    Returns the row and the records it keeps (none: every record of the group is in review)."""
    row, problems = _merge(reader, entity, members, derived)
    for name, reason, detail in problems:
        owner = d.entity(entity).field(name).owner
        targets = [(s, r) for s, r, _ in members if s[0] == owner] or [(s, r) for s, r, _ in members]
        for s, r in targets:
            reader.flag(s, r, reason, detail, name)
    kept = [(s, r) for s, r, _ in members if not reader.in_review(s, r)]
    if kept:
        row["is_deleted"] = all(raw[s][r]["is_deleted"] for s, r in kept)
        row["source_records"] = ", ".join(f"{s[0]}/{s[1]}/{r}" for s, r in kept)
    return row, kept
