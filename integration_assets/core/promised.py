"""pandera's `promised` check: the vendor promised this key, holding a value of one of the given kinds.

Registered here, below the systems' contract modules that use it (`pa.Field(promised="str|null")`), so that
importing a contract needs nothing from the slices above.
"""

from __future__ import annotations

import pandas as pd
from pandera.extensions import register_check_method

__all__ = ["promised"]

_KINDS = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


def _types(kinds: str) -> frozenset[type]:
    """The exact Python types JSON decodes to that satisfy `kinds` (bool is never an int here)."""
    found: set[type] = set()
    for name in kinds.split("|"):
        found |= {type(None)} if name == "null" else set(_KINDS[name])
    return frozenset(found)


try:

    @register_check_method(statistics=["kinds"], check_type="vectorized")
    def promised(series: pd.Series, *, kinds: str) -> pd.Series:
        """The vendor promised this key, holding a value of one of `kinds` (e.g. "str|null").

        Decoded JSON holds exact types only, so one type look-up per value decides: vectorized, it costs a
        fifth of an element-wise check, which counts on a stream of a few hundred thousand records."""
        return series.map(type).isin(_types(kinds))

except ValueError:  # already registered (module reloaded)
    pass
