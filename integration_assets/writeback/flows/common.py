"""What the flows share: a canonical instant as the epoch milliseconds vendors version their records by."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["epoch_ms"]


def epoch_ms(moment: Any) -> int | None:
    """A canonical instant (pandas Timestamp or datetime) as epoch milliseconds."""
    if moment is None:
        return None
    return int(pd.Timestamp(moment).timestamp() * 1000)
