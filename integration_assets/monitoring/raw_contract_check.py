"""The `contract` check of each raw asset: the vendor's pandera contract, run so every run shows what broke.

Raw assets keep the vendor's promise (`systems/<role>/contracts.py`); their check does not block, because the
canonical layer already routes each violating record to the review queue and must still run. Sample values
of personal-data fields are masked.
"""

from collections.abc import Iterable
from typing import Any

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetChecksDefinition, MetadataValue, asset_check

from integration_assets.canonical.raw_contracts import check_stream, contract_model
from integration_assets.core.catalog import Catalog, StreamSpec
from integration_assets.core.contract_evidence import (
    COLUMNS,
    contract_counts,
    failure_evidence,
    is_missing_index,
    plain,
)
from integration_assets.core.evidence import check_result
from integration_assets.core.payload import MISSING, resolve_path
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary

__all__ = ["build_raw_contract_check", "raw_contract_checks"]


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


def build_raw_contract_check(stream: StreamSpec) -> AssetChecksDefinition:
    @asset_check(
        asset=stream.asset_key,
        name="contract",
        blocking=False,
        required_resource_keys={"warehouse"},
        description=f"Live records of `{stream.raw_table}` against the vendor's promise in "
        f"`systems/{stream.role}/contracts.py` (pandera). Not blocking: the canonical layer sends violating "
        "records to the review queue and must still run.",
    )
    def contract(context: AssetCheckExecutionContext) -> AssetCheckResult:
        warehouse: Warehouse = context.resources.warehouse.open()
        warehouse.ensure_raw_table(stream.raw_table)
        live = {rid: r["payload"] for rid, r in warehouse.raw_records(stream.raw_table).items() if not r["is_deleted"]}
        result = check_stream(stream, live)
        pii = _raw_pii_paths(stream)
        rows = failure_evidence(
            result.failure_cases,
            stream.raw_table,
            id_of=lambda index: "" if is_missing_index(index) else str(index),
            is_pii=pii.__contains__,
            personal_values=lambda index: _values_at(live.get(str(index), {}), pii.values()),
        )
        counts, by_check = contract_counts(rows, len(result.failed), result.checked)
        return check_result(
            passed=result.ok,
            system=stream.role,
            summary=f"{stream.key}: {len(result.failed)} of {result.checked} live records break the raw contract "
            f"({len(rows)} failures)",
            next_action=f"Look at the review queue's contract_violation items of {stream.role}/"
            f"{stream.object_type}; if the vendor changed its shape on purpose, update "
            f"`systems/{stream.role}/contracts.py` (see the drift check)",
            records=rows,
            columns=COLUMNS,
            counts=counts,
            extra={"failures_by_check": MetadataValue.md(by_check)},
        )

    return contract


def raw_contract_checks(catalog: Catalog) -> list[AssetChecksDefinition]:
    return [build_raw_contract_check(stream) for stream in catalog.streams if stream.contract is not None]
