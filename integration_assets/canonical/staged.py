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

import gc
import hashlib
import importlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
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
    chunks = (
        (
            ids,
            warehouse.query(
                f"SELECT id, CAST(payload AS TEXT), is_deleted, loaded_at FROM {raw} WHERE id = ANY(?)", [ids]
            ),
        )
        for ids in _batches(pending, CHUNK)
    )
    task = (spec.key, entity, basis, default_region)
    for ids, staged in _read_chunks(dictionary, task, chunks, workers=_workers(len(pending))):
        with warehouse.transaction() as tx:
            tx.lock_table(STAGED_READS)  # a concurrent build staging the same rows waits, then replaces them
            tx.execute(f"DELETE FROM {STAGED_READS} WHERE stream = ? AND record_id = ANY(?)", [spec.key, ids])
            tx.append(STAGED_READS, staged)
    total = warehouse.query(f"SELECT count(*) FROM {STAGED_READS} WHERE stream = ?", [spec.key])[0][0]
    return Staged(read=len(pending), reused=int(total) - len(pending))


# ----------------------------------------------------------------------------------------------- reading

# Reading is pure Python per record (the validators, phonenumbers, email-validator, the vendor contract), so a
# large staging reads its chunks in worker processes, one per core, while this process fetches the next chunks
# and writes the read ones: at a million records that is most of the canonical layer's time. A few rows (an
# hourly sync's changes) are read here: starting the workers would cost more than it saves.
POOL_MIN_ROWS = 2 * CHUNK
WORKERS = min(os.cpu_count() or 1, 4)

Task = tuple[str, str, str, "str | None"]  # stream key, entity read as, basis, default region


def _workers(pending: int) -> int:
    return WORKERS if pending >= POOL_MIN_ROWS and WORKERS > 1 else 0


def _read_chunks(
    dictionary: FieldDictionary, task: Task, chunks: Iterator[tuple[list[str], list[tuple]]], *, workers: int
) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """(ids, staged rows) per chunk, in order: read here, or by `workers` processes with as many chunks in
    flight, so this process holds a bounded number of chunks at a time.

    The workers are forked for this staging and gone when it ends. Forked, not spawned: a spawned worker imports
    the main module again, which re-runs a script that calls `materialize` without a main guard. A forked worker
    touches nothing of this process's but the reading code (not the warehouse's connection nor its threads) and
    leaves by `os._exit`, closing nothing of theirs; it ends before the step releases the warehouse's file lock,
    a copy of which it holds. It first moves everything it inherited out of the garbage collector's sight
    (`gc.freeze`): a collection would otherwise walk the whole of this process's heap (millions of objects
    in a large build) and copy every page it touches."""
    if not workers:
        for ids, rows in chunks:
            yield ids, _read_rows(dictionary, task, rows)
        return
    _WORKER_DICTIONARY[:] = [dictionary]  # what each forked worker reads under
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=gc.freeze) as pool:
        flight: deque[tuple[list[str], Future]] = deque()
        for ids, rows in chunks:
            flight.append((ids, pool.submit(_read_in_worker, task, rows)))
            if len(flight) > workers:
                done, future = flight.popleft()
                yield done, future.result()
        while flight:
            done, future = flight.popleft()
            yield done, future.result()


_WORKER_DICTIONARY: list[FieldDictionary] = []


def _read_in_worker(task: Task, rows: list[tuple]) -> list[dict[str, Any]]:
    return _read_rows(_WORKER_DICTIONARY[0], task, rows)


def _read_rows(dictionary: FieldDictionary, task: Task, rows: Sequence[tuple]) -> list[dict[str, Any]]:
    """The staged rows of raw rows (id, payload as JSON text, is_deleted, loaded_at): each record's contract
    verdict and field reads."""
    key, entity, basis, default_region = task
    spec = CATALOG.stream(key)
    payloads = {str(rid): json_value(text) if text is not None else {} for rid, text, _, _ in rows}
    live = {str(rid): payloads[str(rid)] for rid, _, is_deleted, _ in rows if not is_deleted}
    failed = raw_contracts.check_stream(spec, live).failed if spec.contract is not None and live else {}
    return [
        {
            "stream": spec.key,
            "record_id": str(rid),
            "loaded_at": loaded_at,
            "basis": basis,
            "contract": _dumps(failed[str(rid)]) if str(rid) in failed else None,
            "read": encode_read(
                read_record(
                    dictionary, entity, spec.role, spec.object_type, payloads[str(rid)], default_region=default_region
                )
            ),
        }
        for rid, _, _, loaded_at in rows
    ]


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
