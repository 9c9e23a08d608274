"""What the asset graph says about a table, at definition time: its column schema, its name, its storage.

Dagster shows a `dagster/column_schema` in an asset's Columns section and prefers a materialization's over the
definition's, so the schemas here are declared on the specs from what never depends on a run: the pandera
contracts (types, nullability, uniqueness, checks, a personal-data tag) and, for the canonical layer, the field
dictionary (`canonical/columns.py` builds those on the helpers here). What a run observed of a vendor's payload
is reported under `payload_shape` instead (`source_asset.py`), where the drift check reads it.

The storage kind is read from `WAREHOUSE_URL` with the test `Warehouse.from_url` uses (`is_postgres_url`), when
the code location loads: the same environment the warehouse resource is configured from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dagster import TableColumn, TableColumnConstraints, TableSchema

from integration_assets.core.warehouse import RAW_COLUMNS, is_postgres_url

if TYPE_CHECKING:
    from integration_assets.core.catalog import StreamSpec

__all__ = [
    "PII",
    "PII_TAG",
    "RAW_COLUMN_DESCRIPTIONS",
    "Contracted",
    "column",
    "contracted_columns",
    "raw_schema",
    "sql_columns",
    "storage_kind",
    "table_metadata",
]

PII: dict[str, Any] = {"pii": True}  # pandera `metadata` of a contract column holding personal data
PII_TAG = "pii"  # the column tag Dagster shows (and filters by) for personal data: {"pii": "true"}
# What the bookkeeping columns of every raw table (core/warehouse/tables.py) hold.
RAW_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "The vendor's record id (the primary key).",
    "version": "Epoch milliseconds of the record's last change at the vendor: an upsert never replaces a newer "
    "version with an older one.",
    "payload": "The record exactly as the vendor's API returned it (JSON); its promised fields follow as "
    "`payload.<path>`.",
    "is_deleted": "Deleted, archived or tombstoned at the vendor: the row is kept, flagged, and left out of "
    "`dagster/row_count` (counted in `deleted_rows`).",
    "loaded_at": "When this version of the record landed.",
    "run_id": "The Dagster run that landed it.",
}


def storage_kind(environ: Mapping[str, str] = os.environ) -> Literal["duckdb", "postgres"]:
    """The warehouse's engine as a Dagster kind: `postgres` for a PostgreSQL WAREHOUSE_URL, else `duckdb`.

    Only a label, read while definitions load: a malformed value is refused when the warehouse resource
    starts, not here, and is not trimmed into shape here either (the resource would refuse what this accepts)."""
    return "postgres" if is_postgres_url(environ.get("WAREHOUSE_URL", "")) else "duckdb"


def table_metadata(table: str, schema: TableSchema) -> dict[str, Any]:
    """The definition metadata naming a warehouse table (`raw.crm_contacts`, as SQL names it) and its columns."""
    return {"dagster/table_name": table, "dagster/column_schema": schema}


def column(
    name: str,
    type_: str,
    description: str,
    *,
    nullable: bool = True,
    unique: bool = False,
    other: Iterable[str] = (),
    pii: bool = False,
) -> TableColumn:
    """One column as Dagster shows it; personal data carries the `pii` tag."""
    return TableColumn(
        name,
        type_,
        description=description,
        constraints=TableColumnConstraints(nullable=nullable, unique=unique, other=list(other)),
        tags={PII_TAG: "true"} if pii else None,
    )


def sql_columns(
    columns: Mapping[str, str], descriptions: Mapping[str, str], *, unique: Iterable[str] = ()
) -> list[TableColumn]:
    """Columns declared in the warehouse's portable types (`"TEXT NOT NULL"`), described by `descriptions`."""
    unique = set(unique)
    return [
        column(
            name,
            definition.split()[0].lower(),
            descriptions.get(name, ""),
            nullable="NOT NULL" not in definition.upper(),
            unique=name in unique,
        )
        for name, definition in columns.items()
    ]


@dataclass(frozen=True)
class Contracted:
    """What a pandera contract says about one of its columns."""

    nullable: bool
    unique: bool
    checks: tuple[str, ...]  # readable, e.g. "matches ^[0-9]+$", "one of open, won, lost", ">= 0"
    promised: str | None  # the raw contracts' `promised` kinds (e.g. "str|null"), None elsewhere
    description: str | None
    pii: bool
    dtype: str


def _check_text(name: str, statistics: Mapping[str, Any]) -> str:
    values = list(statistics.values())
    value = values[0] if len(values) == 1 else statistics
    readable = {
        "str_matches": "matches {}",
        "str_startswith": "starts with {}",
        "isin": "one of {}",
        "ge": ">= {}",
        "gt": "> {}",
        "le": "<= {}",
        "lt": "< {}",
    }
    if name == "isin":
        value = ", ".join(str(v) for v in value)
    return readable.get(name, name + " {}").format(value)


def contracted_columns(model: Any) -> dict[str, Contracted]:
    """Column name -> what the pandera `DataFrameModel` promises about it."""
    found: dict[str, Contracted] = {}
    for name, spec in model.to_schema().columns.items():
        promised = next((c.statistics["kinds"] for c in spec.checks if c.name == "promised"), None)
        checks = tuple(_check_text(c.name, c.statistics or {}) for c in spec.checks if c.name != "promised")
        found[name] = Contracted(
            nullable=bool(spec.nullable),
            unique=bool(spec.unique),
            checks=checks,
            promised=promised,
            description=spec.description,
            pii=bool((spec.metadata or {}).get("pii")),
            dtype=str(spec.dtype),
        )
    return found


def raw_schema(stream: StreamSpec) -> TableSchema:
    """A raw table's columns: the bookkeeping ones every raw table has, then each field the stream's contract
    promises in the payload (`payload.<path>`), with the kinds of JSON value promised, its checks and whether it
    is personal data. Stable whatever a run fetched: the observed shape is the materialization's `payload_shape`."""
    columns = sql_columns(RAW_COLUMNS, RAW_COLUMN_DESCRIPTIONS, unique=["id"])
    if stream.contract is not None:
        contracted = contracted_columns(stream.contract)
        for name, path in stream.contract_columns.items():
            facts = contracted[name]
            columns.append(
                column(
                    f"payload.{path}",
                    facts.promised or facts.dtype,
                    facts.description
                    or f"`{path}` of the {stream.vendor} {stream.object_type} record, as the vendor sends it.",
                    nullable=facts.nullable,
                    unique=facts.unique,
                    other=facts.checks,
                    pii=facts.pii,
                )
            )
    return TableSchema(columns=columns)
