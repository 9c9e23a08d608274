"""The `contract` check of each raw asset: the vendor's pandera contract, run so every run shows what broke.

Raw assets keep the vendor's promise (`systems/<role>/contracts.py`); their check does not block, because the
canonical layer already routes each violating record to the review queue and must still run. Sample values
of personal-data fields are masked.

It costs what landed, not the whole history: in the stream's own step it validates each chunk as it commits
and records the ids that break the contract in `ops.raw_contract_failures`, replacing what it knew of the
records it saw again. The verdict counts every live record still on that list, so a record that broke the
contract in an earlier run keeps the check failing until it is fixed or deleted. Executed alone (from the
UI), the check validates every live row of the table and rewrites the list.

It also reports the stream's records in quarantine (`core/quarantine.py`: not stored at all, because no backend
can store them as sent): they fail the check at WARN severity when nothing else does, since the rest of the
stream landed and the canonical layer must still run; their next action says where they are and what to do.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from integration_assets.canonical.raw_contracts import ContractResult, check_stream, contract_model
from integration_assets.core import quarantine
from integration_assets.core.catalog import StreamSpec
from integration_assets.core.contract_evidence import (
    SCHEMA,
    contract_counts,
    failure_evidence,
    is_missing_index,
    named_ids,
    plain,
)
from integration_assets.core.evidence import check_result
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.payload import MISSING, resolve_path
from integration_assets.core.stream_check import ChunkWatcher, StreamCheck, StreamCheckRun
from integration_assets.core.warehouse import RawRow, Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.systems import CATALOG

__all__ = ["FAILURES", "ContractCheck"]

FAILURES = "ops.raw_contract_failures"  # the live records known to break their stream's raw contract
FAILURE_COLUMNS = {"stream": "TEXT NOT NULL", "record_id": "TEXT NOT NULL", "broke": "TEXT"}
_DELETE_BATCH = 500


def _raw_pii_paths(stream: StreamSpec) -> dict[str, str]:
    """Contract column → payload path, for the paths the field dictionary flags as personal data."""
    _, columns = contract_model(stream)
    pii_paths = {
        path
        for found in load_dictionary().fields_from(stream.role, stream.object_type)
        if found.spec.pii
        for path in found.paths
    }
    return {column: path for column, path in columns.items() if path in pii_paths}


def _values_at(payload: Any, paths: Iterable[str]) -> set[str]:
    found = (resolve_path(payload, path) for path in paths)
    return {plain(value) for value in found if value is not MISSING and value not in (None, "")}


@dataclass
class _Judged:
    """What the contract found in the records it validated (one run's chunks, or the whole table)."""

    checked: int = 0
    failed: set[str] = field(default_factory=set)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def add(self, stream: StreamSpec, live: dict[str, Any], result: ContractResult) -> None:
        self.checked += result.checked
        self.failed.update(result.failed)
        if result.failed:
            pii = _raw_pii_paths(stream)
            self.evidence += failure_evidence(
                result.failure_cases,
                stream.raw_table,
                id_of=lambda index: "" if is_missing_index(index) else str(index),
                is_pii=pii.__contains__,
                personal_values=lambda index: _values_at(live.get(str(index), {}), pii.values()),
                link_of=lambda record_id: CATALOG.record_page(stream.role, stream.object_type, record_id),
            )


def _remember(warehouse: Warehouse, stream: StreamSpec, forget: Iterable[str] | None, result: ContractResult) -> None:
    """Forgets the listed records seen again (every record of the stream when `forget` is None) and lists
    those that break the contract now."""
    forget = None if forget is None else sorted(forget)
    with warehouse.transaction() as tx:
        if forget is None:
            tx.execute(f"DELETE FROM {FAILURES} WHERE stream = ?", [stream.key])
        for start in range(0, len(forget or ()), _DELETE_BATCH):
            batch = forget[start : start + _DELETE_BATCH]  # type: ignore[index]
            marks = ", ".join("?" for _ in batch)
            tx.execute(f"DELETE FROM {FAILURES} WHERE stream = ? AND record_id IN ({marks})", [stream.key, *batch])
        if result.failed:
            rows = [
                {"stream": stream.key, "record_id": rid, "broke": "; ".join(broke)}
                for rid, broke in result.failed.items()
            ]
            tx.append(FAILURES, rows)


def _listed(warehouse: Warehouse, stream: StreamSpec) -> set[str]:
    rows = warehouse.query(f"SELECT record_id FROM {FAILURES} WHERE stream = ?", [stream.key])
    return {str(row[0]) for row in rows}


def _still_failing(warehouse: Warehouse, stream: StreamSpec) -> set[str]:
    """Records on the list that are still live in the raw table."""
    rows = warehouse.query(
        f"SELECT f.record_id FROM {FAILURES} f JOIN {stream.raw_table} r ON r.id = f.record_id "
        "WHERE f.stream = ? AND NOT r.is_deleted",
        [stream.key],
    )
    return {str(row[0]) for row in rows}


class ContractCheck(StreamCheck):
    name = "contract"

    def applies(self, stream: StreamSpec) -> bool:
        return stream.contract is not None

    def description(self, stream: StreamSpec) -> str:
        return (
            f"Records of `{stream.raw_table}` against the vendor's promise in `systems/{stream.role}/contracts.py` "
            "(pandera): the records each run lands, as they land, plus those an earlier run found broken and "
            "still live; executed alone, every live record. Not blocking: the canonical layer sends violating "
            "records to the review queue and must still run. Lists each failure (record id with its vendor link, "
            "column, check, value; personal data masked)."
        )

    def watch(self, stream: StreamSpec, warehouse: Warehouse) -> tuple[ChunkWatcher, Any]:
        warehouse.ensure_table(FAILURES, FAILURE_COLUMNS)
        judged = _Judged()
        listed = _listed(warehouse, stream)  # few: a clean stream's chunks touch the list only to add to it

        def on_chunk(rows: Sequence[RawRow]) -> None:
            live = {row.id: row.payload for row in rows if not row.is_deleted}
            result = check_stream(stream, live)
            judged.add(stream, live, result)
            seen_again = listed.intersection(row.id for row in rows)
            if seen_again or result.failed:
                _remember(warehouse, stream, seen_again, result)
                listed.difference_update(seen_again)
                listed.update(result.failed)

        return on_chunk, lambda: judged

    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult:
        stream, warehouse = run.stream, run.warehouse
        judged: _Judged | None = run.watched
        if judged is None:  # alone: the whole table
            warehouse.ensure_raw_table(stream.raw_table)
            warehouse.ensure_table(FAILURES, FAILURE_COLUMNS)
            live = {
                rid: r["payload"] for rid, r in warehouse.raw_records(stream.raw_table).items() if not r["is_deleted"]
            }
            result = check_stream(stream, live)
            judged = _Judged()
            judged.add(stream, live, result)
            _remember(warehouse, stream, None, result)
            scope = f"{judged.checked} live records"
        else:
            scope = f"{judged.checked} live records landed this run"
        failing = _still_failing(warehouse, stream)
        earlier = len(failing - judged.failed)
        counts, by_check = contract_counts(judged.evidence, len(failing), judged.checked)
        held = quarantine.open_items(warehouse, stream)
        reasons = {item["reason_code"]: 0 for item in held}
        for item in held:
            reasons[item["reason_code"]] += 1
        summary = (
            f"{stream.key}: {len(judged.failed)} of {scope} break the raw contract "
            f"({len(judged.evidence)} failures){named_ids(judged.evidence)}"
            + (f"; {earlier} found earlier still break it" if earlier else "")
        )
        next_action = (
            f"Look at the review queue's contract_violation items of {stream.role}/{stream.object_type}; if the "
            f"vendor changed its shape on purpose, update `systems/{stream.role}/contracts.py` (see the drift check)"
        )
        if held:
            quarantined_ids = [str(item["record_id"]) for item in held]
            summary += (
                f"; {len(held)} records not stored, in quarantine "
                f"({', '.join(f'{n} {code}' for code, n in sorted(reasons.items()))}): "
                f"{', '.join(quarantined_ids[:5])}{', …' if len(held) > 5 else ''}"
            )
            quarantine_action = (
                f"Open the review queue's items found by {stream.key} (their raw content, escaped, is in "
                f"ops.quarantine) and correct those records at the vendor; the next sync stores them and resolves "
                "the items. The rest of the stream landed."
            )
            next_action = quarantine_action if not failing else f"{next_action}. {quarantine_action}"
        evidence = judged.evidence + [
            {
                "id": str(item["record_id"]),
                "link": CATALOG.record_page(stream.role, stream.object_type, item["record_id"]) or "",
                "table": quarantine.QUARANTINE_TABLE,
                "column": "(whole record)",
                "check": item["reason_code"],
                "value": f"not stored ({int(item['raw_bytes'] or 0):,} bytes escaped)",  # content: ops.quarantine
            }
            for item in held
        ]
        return check_result(
            passed=not failing and not held,
            system=stream.role,
            summary=summary,
            next_action=next_action,
            records=evidence,
            columns=SCHEMA,
            limit=load_monitoring().reconciliation.sample_rows,
            counts={
                **counts,
                "failed_earlier_still_live": earlier,
                "quarantined_open": len(held),
                **{f"quarantined_{code}": n for code, n in sorted(reasons.items())},
            },
            # a quarantined record alone is a warning: the stream landed and the canonical layer must still run
            severity=AssetCheckSeverity.ERROR if failing else AssetCheckSeverity.WARN,
            extra={
                "failures_by_check": MetadataValue.md(by_check),
                "earlier_failing_ids": MetadataValue.text(", ".join(sorted(failing - judged.failed)[:20])),
            },
        )
