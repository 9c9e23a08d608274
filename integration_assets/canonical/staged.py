"""Each raw record is read once per version: its vendor-contract verdict and its field reads are kept in
`canonical.staged_reads`, stamped with the raw row's `loaded_at`, so a build reads again only the rows loaded
since the last one (an hourly sync changes a few records of a million; reading every one again was most of
the canonical layer's time).

A staged read is void when its raw row was loaded again (a new version, a deletion mark) or when what reads it
changed: the field dictionary, the default phone region, or the code that reads (the validators, normalizers
and vendor contracts, fingerprinted by their source). A build with `rebuild: true` discards them all.

The vendor contract is checked per record here, on the rows staged together: its rules are per value (the id's
uniqueness holds by the raw table's key), so a record's verdict does not depend on the others staged with it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from integration_assets.canonical import raw_contracts, validate
from integration_assets.canonical.validate import EMPTY, FieldValue, Problem, RecordRead, read_record, remembered
from integration_assets.core import payload as payload_module
from integration_assets.core import promised
from integration_assets.core.warehouse import Warehouse, json_value, validate_table
from integration_assets.mapping import normalize, schema
from integration_assets.mapping.normalize import Money
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG

__all__ = ["STAGED_READS", "Staged", "decode_read", "encode_read", "reads_basis", "stage_stream"]

STAGED_READS = "canonical.staged_reads"
STAGED_COLUMNS = {
    "stream": "TEXT NOT NULL",  # asset key of the source stream, e.g. crm/companies
    "record_id": "TEXT NOT NULL",
    "loaded_at": "TIMESTAMPTZ NOT NULL",  # the raw row's stamp this read was made from
    "basis": "TEXT NOT NULL",  # reads_basis() it was made under
    "contract": "TEXT",  # JSON list of the vendor-contract rules the record broke (live records), or NULL
    "read": "TEXT NOT NULL",  # the field reads (encode_read)
}
CHUNK = 20_000  # raw rows read per batch: bounds the payloads held at once


@dataclass(frozen=True)
class Staged:
    """What staging one stream did: rows read anew, and rows whose earlier read still held."""

    read: int
    reused: int


# ----------------------------------------------------------------------------------------------- encoding


def _encode(value: Any) -> Any:
    if value is EMPTY:
        return None
    if isinstance(value, Money):
        return {"m": [value.minor, value.currency]}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, str | bool | int | float | list):
        return value
    raise TypeError(f"a canonical value of type {type(value).__name__} cannot be staged: {value!r}")


def _tagged(value: dict[str, Any]) -> Any:
    if "m" in value:
        return Money(*value["m"])
    return datetime.fromisoformat(value["t"])


def _dumps(document: Any) -> str:
    try:
        return orjson.dumps(document).decode()
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def encode_read(read: RecordRead) -> str:
    """A record's field reads as JSON text (values tagged where JSON has no type: money, instants)."""
    document: dict[str, Any] = {"v": {name: _encode(found.value) for name, found in read.values.items()}}
    if read.problems:
        document["p"] = [[p.reason_code, p.field, p.detail] for p in read.problems]
    return _dumps(document)


def decode_read(text: str) -> RecordRead:
    """A fresh `RecordRead` from `encode_read`'s text (builds may change the values they are given)."""
    document = json_value(text)
    values = {}
    for name, value in document["v"].items():  # a loop, not a call per value: every build decodes every record
        if value is None:
            value = EMPTY
        elif type(value) is dict:
            value = _tagged(value)
        values[name] = FieldValue(value, None)
    return RecordRead(values=values, problems=[Problem(*problem) for problem in document.get("p", ())])


# ----------------------------------------------------------------------------------------------- the basis


_PARSERS = (
    "phonenumbers",
    "email-validator",
    "iso4217",
    "pandera",
    "pandas",
)  # libraries whose releases may change a read


@cache
def _code_fingerprint() -> str:
    """The source of the code that turns a payload into reads: a release that changes it voids them."""
    contracts = sorted({s.contract.__module__ for s in CATALOG.streams if s.contract is not None})
    digest = hashlib.sha256(" ".join(f"{name}={version(name)}" for name in _PARSERS).encode())
    modules = [validate, normalize, schema, raw_contracts, promised, payload_module]
    for module in [*modules, *map(importlib.import_module, contracts)]:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def reads_basis(dictionary: FieldDictionary, default_region: str | None) -> str:
    """What every staged read depends on besides its payload: the dictionary the build loaded, the default
    region, the reading code and the libraries that parse values (a new phonenumbers release may read a
    number differently)."""
    fingerprint = remembered(
        _DICTIONARY_PRINTS,
        dictionary,
        (),
        lambda: hashlib.sha256(dictionary.model_dump_json().encode()).hexdigest()[:12],
    )
    return f"{fingerprint}:{default_region}:{_code_fingerprint()}"


_DICTIONARY_PRINTS: dict[tuple, tuple[Any, Any]] = {}


# ----------------------------------------------------------------------------------------------- staging


def stage_stream(
    warehouse: Warehouse,
    stream: tuple[str, str],
    entity: str,
    dictionary: FieldDictionary,
    *,
    default_region: str | None,
    restage: bool = False,
) -> Staged:
    """Brings the stream's staged reads up to date with its raw table; returns how many were read anew."""
    spec = CATALOG.stream_of(*stream)
    raw, basis = validate_table(spec.raw_table), reads_basis(dictionary, default_region)
    warehouse.ensure_raw_table(spec.raw_table)
    warehouse.ensure_table(STAGED_READS, STAGED_COLUMNS, primary_key=["stream", "record_id"])
    with warehouse.transaction() as tx:
        tx.lock_table(STAGED_READS)
        if restage:
            tx.execute(f"DELETE FROM {STAGED_READS} WHERE stream = ?", [spec.key])
        else:  # void what was read from an older load of its row, or under another basis, or whose row is gone
            tx.execute(
                f"DELETE FROM {STAGED_READS} AS s WHERE s.stream = ? AND (s.basis <> ? OR NOT EXISTS "
                f"(SELECT 1 FROM {raw} AS r WHERE r.id = s.record_id AND r.loaded_at = s.loaded_at))",
                [spec.key, basis],
            )
    pending = [
        row[0]
        for row in warehouse.query(
            f"SELECT r.id FROM {raw} AS r WHERE NOT EXISTS (SELECT 1 FROM {STAGED_READS} AS s "
            "WHERE s.stream = ? AND s.record_id = r.id)",
            [spec.key],
        )
    ]
    for ids in _batches(pending, CHUNK):
        rows = warehouse.query(f"SELECT id, payload, is_deleted, loaded_at FROM {raw} WHERE id = ANY(?)", [ids])
        staged = _read_rows(spec, entity, dictionary, rows, basis, default_region)
        with warehouse.transaction() as tx:
            tx.lock_table(STAGED_READS)  # a concurrent build staging the same rows waits, then replaces them
            tx.execute(f"DELETE FROM {STAGED_READS} WHERE stream = ? AND record_id = ANY(?)", [spec.key, ids])
            tx.append(STAGED_READS, staged)
    total = warehouse.query(f"SELECT count(*) FROM {STAGED_READS} WHERE stream = ?", [spec.key])[0][0]
    return Staged(read=len(pending), reused=int(total) - len(pending))


def _read_rows(
    spec, entity: str, dictionary: FieldDictionary, rows: Sequence[tuple], basis: str, default_region: str | None
) -> list[dict[str, Any]]:
    live = {str(rid): payload for rid, payload, is_deleted, _ in rows if not is_deleted}
    failed = raw_contracts.check_stream(spec, live).failed if spec.contract is not None and live else {}
    return [
        {
            "stream": spec.key,
            "record_id": str(rid),
            "loaded_at": loaded_at,
            "basis": basis,
            "contract": _dumps(failed[str(rid)]) if str(rid) in failed else None,
            "read": encode_read(
                read_record(dictionary, entity, spec.role, spec.object_type, payload, default_region=default_region)
            ),
        }
        for rid, payload, _, loaded_at in rows
    ]


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
