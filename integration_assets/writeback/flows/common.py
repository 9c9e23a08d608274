"""What the flows share: reading canonical rows without pandas' missing-value zoo, and vendor ids."""

from __future__ import annotations

from typing import Any

import pandas as pd

from integration_assets.core.warehouse import Warehouse

__all__ = ["epoch_ms", "rows", "vendor_id"]


def rows(warehouse: Warehouse, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    frame = warehouse.frame(sql, params or [])
    return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def vendor_id(canonical_id: str) -> str:
    """`crm:30000051` → `30000051`: the id the vendor knows the record by."""
    return str(canonical_id).split(":", 1)[1]


def epoch_ms(moment: Any) -> int | None:
    """A canonical instant (pandas Timestamp or datetime) as epoch milliseconds."""
    if moment is None:
        return None
    return int(pd.Timestamp(moment).timestamp() * 1000)
