"""What a flow promises before it sends (pandera): a planned write that breaks its contract goes to the review
queue instead of to the vendor. Vocabularies come from the field dictionary, so they cannot drift from it."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from integration_assets.core.evidence import mask
from integration_assets.mapping.normalize import currency_exponent
from integration_assets.writeback.model import PlannedWrite

__all__ = ["CANONICAL_ID", "known_currency", "violations"]

CANONICAL_ID = r"^(crm|billing|support):\S+$"


def known_currency() -> pa.Check:
    return pa.Check(
        lambda s: s.map(lambda c: isinstance(c, str) and currency_exponent(c) is not None),
        element_wise=False,
        error="an ISO-4217 currency with a minor unit",
    )


def violations(writes: Sequence[PlannedWrite], schema: pa.DataFrameSchema) -> dict[int, list[str]]:
    """Positions of the writes whose payload breaks `schema`, with what each broke."""
    if not writes:
        return {}
    frame = pd.DataFrame([{"record_id": w.record_id, **w.payload} for w in writes])
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return {}
    failed: dict[int, list[str]] = {}
    for case in cases.itertuples(index=False):
        index = case.index
        positions = range(len(writes)) if index is None or index != index else [int(index)]
        for position in positions:
            # the failing value may be personal data (a name, free text): its fingerprint, never the value
            got = mask(case.failure_case) or repr(case.failure_case)
            failed.setdefault(position, []).append(f"{case.column}: {case.check} (got {got})")
    return failed
