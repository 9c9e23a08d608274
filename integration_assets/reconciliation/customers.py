"""Customer master: the copies of a client's name, and of a person's email and phone, that a non-owning system
keeps must agree with the owning system's value.

The field dictionary says which fields several systems hold and who owns each; both sides are read from the
raw records of one canonical row through the dictionary's normalizers, so `+44 20 7946 0123` and
`+442079460123`, or `Ann@X.example` and `ann@x.example`, are the same value. Personal data is masked.

Set-based: the warehouse joins each live canonical row's records (`canonical.record_map`) to their live raw
records, reads both sides at the dictionary's paths and returns only the pairs whose raw text differs (equal
text needs no normalizing); the normalizers then run once per distinct value, not once per record.
"""

import re
from collections.abc import Sequence
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.canonical.assets import RECORD_MAP, RECORD_MAP_COLUMNS
from integration_assets.core.evidence import mask
from integration_assets.core.warehouse import Warehouse, validate_table
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import normalize_email, normalize_name, normalize_phone
from integration_assets.mapping.schema import FieldDictionary, FieldSpec
from integration_assets.reconciliation.common import (
    CrossSystemCheck,
    canonical_key,
    diff_row,
    json_string,
    outcome,
)
from integration_assets.reconciliation.findings import record_findings
from integration_assets.systems import CATALOG

__all__ = ["checks", "compared_fields", "master_data_problems"]

ASSET = "canonical/customers"  # its build writes canonical.customers and canonical.contacts, and their record map
ENTITIES = {"customers": "customer_id", "contacts": "person_id"}  # entity → the id `record_map` names a row by
COMPARED_TYPES = frozenset({"string", "email", "phone"})  # names, emails, phones: not ids, dates or labels


def compared_fields(dictionary: FieldDictionary, entity: str) -> list[str]:
    """Fields of `entity` that more than one system holds a value of, and that people read."""
    return [
        name
        for name, spec in dictionary.entity(entity).fields.items()
        if spec.type in COMPARED_TYPES and len(spec.sources) > 1 and spec.owner in spec.sources
    ]


def _canonical(spec: FieldSpec, text: str) -> str | None:
    """The value as the canonical build reads it (the type's normalizer, then the dictionary's format), or None
    when it is empty or fails its rules (a record in review for it, or accepted by a person as it is)."""
    if spec.type == "email":
        found = normalize_email(text)
    elif spec.type == "phone":
        found = normalize_phone(text)
    else:
        found = normalize_name(text)
    if not isinstance(found, str) or not found.strip():
        return None
    fmt = spec.format
    if fmt is not None:
        if fmt.max_length is not None and len(found) > fmt.max_length:
            return None
        if fmt.pattern is not None and not re.fullmatch(fmt.pattern, found):
            return None
    return found


def _comparable(value: str, kind: str) -> str:
    if kind == "string":
        return " ".join(value.split()).casefold()
    return value


def _listed(path: str | None) -> bool:
    return not path or "[]" in path


def _side(entity: str, system: str, object_type: str, path: str, alias: str) -> tuple[str, list[str]]:
    """The live raw records of one stream that a live canonical row of `entity` keeps, with the text at `path`
    (NULL unless a JSON string): `cid`, `rid`, `v`."""
    raw = CATALOG.stream_of(system, object_type).raw_table
    sql = f"""SELECT m.canonical_id AS cid, m.record_id AS rid, {json_string("r.payload", path)} AS v
        FROM {RECORD_MAP} AS m JOIN {validate_table(raw)} AS r ON r.id = m.record_id
        WHERE m.asset = ? AND m.table_name = ? AND m.system = ? AND m.object_type = ? AND NOT r.is_deleted
            AND m.canonical_id IN (SELECT {ENTITIES[entity]} FROM canonical.{entity} WHERE NOT is_deleted)"""
    return f"({sql}) AS {alias}", [ASSET, f"canonical.{entity}", system, object_type]


def _candidates(dictionary: FieldDictionary) -> tuple[str, list[Any]]:
    """One statement: per (entity, field, non-owning stream), each non-owning record beside its row's owner
    record, where both hold text and the texts differ."""
    parts: list[str] = []
    params: list[Any] = []
    for entity in ENTITIES:
        for name in compared_fields(dictionary, entity):
            spec = dictionary.entity(entity).field(name)
            owner = spec.sources[spec.owner]
            for system, source in spec.sources.items():
                if system == spec.owner or _listed(source.path) or _listed(owner.path):
                    continue  # a value mapped over a list is a list, never text to compare
                this, this_params = _side(entity, system, source.object_type, source.path or "", "n")
                other, other_params = _side(entity, spec.owner, owner.object_type, owner.path or "", "o")
                parts.append(
                    "SELECT CAST(? AS TEXT) AS entity, CAST(? AS TEXT) AS field, CAST(? AS TEXT) AS system, "
                    "CAST(? AS TEXT) AS object_type, n.rid AS rid, n.v AS v, o.rid AS owner_rid, o.v AS owner_v "
                    f"FROM {this} JOIN {other} ON o.cid = n.cid "
                    "WHERE n.v <> o.v AND trim(n.v) <> '' AND trim(o.v) <> ''"
                )
                params += [entity, name, system, source.object_type, *this_params, *other_params]
    if not parts:
        return "", []
    return " UNION ALL ".join(parts) + " ORDER BY 1, 3, 4, 5, 2, 7", params


def master_data_problems(warehouse: Warehouse, dictionary: FieldDictionary) -> list[dict[str, Any]]:
    """One diff row per (non-owning record, field) whose value differs from the owner's, after normalization.

    Only live records of live canonical rows count, as the canonical build placed them (`canonical.record_map`):
    a record in review or deleted at its vendor is not compared. Each distinct value is normalized once."""
    warehouse.ensure_table(RECORD_MAP, RECORD_MAP_COLUMNS)
    for entity in ENTITIES:
        for name in compared_fields(dictionary, entity):
            for system, source in dictionary.entity(entity).field(name).sources.items():
                warehouse.ensure_raw_table(CATALOG.stream_of(system, source.object_type).raw_table)
    sql, params = _candidates(dictionary)
    if not sql:
        return []
    values: dict[tuple[str, str, str], str | None] = {}  # (entity, field, raw text) → canonical value

    def read(entity: str, name: str, text: str) -> str | None:
        key = (entity, name, text)
        if key not in values:
            values[key] = _canonical(dictionary.entity(entity).field(name), text)
        return values[key]

    problems: list[dict[str, Any]] = []
    judged: set[tuple[str, str, str, str, str]] = set()  # (entity, field, record): against its first owner
    for entity, name, system, object_type, rid, text, owner_rid, owner_text in warehouse.query(sql, params):
        spec = dictionary.entity(entity).field(name)
        owner_value = read(entity, name, owner_text)
        if owner_value is None or (entity, name, system, object_type, rid) in judged:
            continue  # nothing to agree with: an empty or invalid owner value is the review queue's business
        judged.add((entity, name, system, object_type, rid))
        value = read(entity, name, text)
        if value is None or _comparable(value, spec.type) == _comparable(owner_value, spec.type):
            continue
        shown = mask if dictionary.is_pii(entity, name) else str
        owner_ref = (spec.owner, spec.sources[spec.owner].object_type, str(owner_rid))
        problems.append(
            diff_row(
                (system, object_type, str(rid)),
                f"{name}_differs",
                f"{entity}.{name}",
                shown(value),
                shown(owner_value),
                owner_ref,
            )
        )
    return problems


def records_compared(warehouse: Warehouse) -> int:
    """Live canonical rows (clients and people) that more than one record feeds."""
    counts = " + ".join(
        f"(SELECT count(*) FROM canonical.{entity} WHERE NOT is_deleted AND source_records LIKE '%, %')"
        for entity in ENTITIES
    )
    return int(warehouse.query(f"SELECT {counts}")[0][0])


def problem_kinds(dictionary: FieldDictionary) -> Sequence[str]:
    return sorted({f"{name}_differs" for entity in ENTITIES for name in compared_fields(dictionary, entity)})


def customer_master_agrees(warehouse: Warehouse) -> AssetCheckResult:
    dictionary = load_dictionary()
    rows = master_data_problems(warehouse, dictionary)
    compared = records_compared(warehouse)
    return outcome(
        system="crm",
        rows=rows,
        kinds=problem_kinds(dictionary),
        ok_summary=f"{compared} clients and people held by several systems: names, emails and phones agree.",
        summary="Master data disagrees with the owning system",
        next_action="Correct the listed record in the non-owning system (Stripe or Zendesk) to the owner's value, "
        "or, when the owner's value is the outdated one, correct it in HubSpot; the next sync clears the row.",
        severity=AssetCheckSeverity.WARN,
        extra_counts={"records_compared": compared},
        findings=record_findings(warehouse, ASSET, "customer_master_agrees", rows),
    )


checks = [
    CrossSystemCheck(
        name="customer_master_agrees",
        asset=canonical_key("customers"),
        evaluate=customer_master_agrees,
        description="Names of clients, and emails and phones of people, kept by a system that does not own them "
        "(per field_dictionary.yaml) agree with the owning system's value after normalization. Values that "
        "are personal data are shown masked.",
    )
]
