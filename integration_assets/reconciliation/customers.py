"""Customer master: the copies of a client's name, and of a person's email and phone, that a non-owning system
keeps must agree with the owning system's value.

The field dictionary says which fields several systems hold and who owns each; both sides are read from the
raw records of one canonical row through the dictionary's normalizers, so `+44 20 7946 0123` and
`+442079460123`, or `Ann@X.example` and `ann@x.example`, are the same value. Personal data is masked.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity

from integration_assets.canonical.validate import is_empty, read_record
from integration_assets.core.evidence import mask
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.reconciliation.common import (
    CrossSystemCheck,
    Ref,
    canonical_key,
    diff_row,
    outcome,
    source_refs,
)
from integration_assets.systems import CATALOG

__all__ = ["checks", "compared_fields", "master_data_problems"]

ENTITIES = ("customers", "contacts")  # canonical.customers also rebuilds canonical.contacts
COMPARED_TYPES = frozenset({"string", "email", "phone"})  # names, emails, phones: not ids, dates or labels


def compared_fields(dictionary: FieldDictionary, entity: str) -> list[str]:
    """Fields of `entity` that more than one system holds a value of, and that people read."""
    return [
        name
        for name, spec in dictionary.entity(entity).fields.items()
        if spec.type in COMPARED_TYPES and len(spec.sources) > 1 and spec.owner in spec.sources
    ]


def _comparable(value: Any, kind: str) -> Any:
    if kind == "string":
        return " ".join(str(value).split()).casefold()
    return value


def master_data_problems(
    dictionary: FieldDictionary,
    entity: str,
    rows: Iterable[Mapping[str, Any]],
    payloads: Mapping[Ref, dict],
) -> list[dict[str, Any]]:
    """One diff row per (non-owning record, field) whose value differs from the owner's, after normalization.

    `rows` are live canonical rows (their `source_records`); `payloads` the live raw records by reference."""
    fields = compared_fields(dictionary, entity)
    problems: list[dict[str, Any]] = []
    for row in rows:
        reads = {
            ref: read_record(dictionary, entity, ref[0], ref[1], payloads[ref])
            for ref in source_refs(row["source_records"])
            if ref in payloads
        }
        for name in fields:
            spec = dictionary.entity(entity).field(name)
            owners = [(ref, r.get(name)) for ref, r in reads.items() if ref[0] == spec.owner]
            owner_values = [(ref, v) for ref, v in owners if not is_empty(v)]
            if not owner_values:
                continue  # nothing to agree with: an empty owner value is the review queue's business
            owner_ref, owner_value = owner_values[0]
            for ref, found in reads.items():
                source = spec.sources.get(ref[0])
                if ref[0] == spec.owner or source is None or source.object_type != ref[1]:
                    continue
                value = found.get(name)
                if is_empty(value) or _comparable(value, spec.type) == _comparable(owner_value, spec.type):
                    continue
                shown = mask if dictionary.is_pii(entity, name) else str
                problems.append(
                    diff_row(
                        ref,
                        f"{name}_differs",
                        f"{entity}.{name}",
                        shown(value),
                        shown(owner_value),
                        owner_ref,
                    )
                )
    return problems


def _payloads(warehouse: Warehouse, refs: set[Ref]) -> dict[Ref, dict]:
    found: dict[Ref, dict] = {}
    for stream in {ref[:2] for ref in refs}:
        table = CATALOG.stream_of(*stream).raw_table
        warehouse.ensure_raw_table(table)
        for rid, row in warehouse.raw_records(table).items():
            if not row["is_deleted"] and (*stream, rid) in refs:
                found[(*stream, rid)] = row["payload"]
    return found


def problem_kinds(dictionary: FieldDictionary) -> list[str]:
    return sorted({f"{name}_differs" for entity in ENTITIES for name in compared_fields(dictionary, entity)})


def customer_master_agrees(warehouse: Warehouse) -> AssetCheckResult:
    dictionary = load_dictionary()
    rows: list[dict[str, Any]] = []
    compared = 0
    for entity in ENTITIES:
        canonical = warehouse.records(f"SELECT source_records FROM canonical.{entity} WHERE NOT is_deleted")
        multi = [r for r in canonical if len(source_refs(r["source_records"])) > 1]
        compared += len(multi)
        refs = {ref for r in multi for ref in source_refs(r["source_records"])}
        rows += master_data_problems(dictionary, entity, multi, _payloads(warehouse, refs))
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
