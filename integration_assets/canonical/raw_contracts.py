"""Raw contracts: what each vendor's API promises about a stream, checked with pandera before anything is read.

Each `systems/<role>/contracts.py` declares one `pandera` DataFrameModel per stream over a *contract frame*:
one row per raw record (index = the record id as stored), one column per promised path (`COLUMNS`), holding
the value found there or the `MISSING` marker when the key is absent (a drifted shape, never read as null).
Validation is lazy, so one run lists every failure of the batch. `check_stream` returns the failure cases
(a frame the monitoring issue reuses as a drift signal) and the record ids that broke the contract, which go
to the review queue as `contract_violation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.payload import MISSING, read_columns

__all__ = ["ContractResult", "check_stream", "contract_frame", "contract_model"]


@dataclass
class ContractResult:
    system: str
    object_type: str
    checked: int
    failure_cases: pd.DataFrame  # pandera's failure cases: column, check, failure_case, index (= record id)
    failed: dict[str, list[str]] = field(default_factory=dict)  # record id -> what it broke

    @property
    def ok(self) -> bool:
        return not self.failed


def contract_model(stream: StreamSpec) -> tuple[type[pa.DataFrameModel], dict[str, str]]:
    """The stream's pandera model and, per contract column, the payload path it reads."""
    if stream.contract is None:
        raise ValueError(f"{stream.key} declares no contract")
    return stream.contract, dict(stream.contract_columns)


def contract_frame(records: dict[str, dict], columns: dict[str, str]) -> pd.DataFrame:
    """record id -> payload as the contract frame (object columns, MISSING kept)."""
    ids = list(records)
    data = read_columns([records[i] for i in ids], columns)
    frame = pd.DataFrame(data, index=pd.Index(ids, name="record_id"), dtype=object)
    return frame


def check_stream(stream: StreamSpec, records: dict[str, dict]) -> ContractResult:
    """Validates live raw payloads (record id -> payload) of one stream against its vendor contract."""
    system, object_type = stream.role, stream.object_type
    model, columns = contract_model(stream)
    frame = contract_frame(records, columns)
    empty = pd.DataFrame(columns=["column", "check", "failure_case", "index"])
    if frame.empty:
        return ContractResult(system, object_type, 0, empty)
    try:
        model.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.copy()
    else:
        return ContractResult(system, object_type, len(frame), empty)
    cases["failure_case"] = cases["failure_case"].map(lambda v: "<missing>" if v is MISSING else v)
    failed: dict[str, list[str]] = {}
    positions = {rid: n for n, rid in enumerate(frame.index)}
    for row in cases.itertuples(index=False):
        index = row.index
        if index is None or (isinstance(index, float) and index != index):
            # a frame-level failure (a column gone entirely): every record broke it
            targets = list(frame.index)
        else:
            targets = [index] if index in positions else [frame.index[int(index)]]
        for rid in targets:
            failed.setdefault(str(rid), []).append(f"{row.column}: {row.check}")
    return ContractResult(system, object_type, len(frame), cases, failed)
