"""pandera's `promised` check: the vendor promised this key, holding a value of one of the given kinds.

Registered here, below the systems' contract modules that use it (`pa.Field(promised="str|null")`), so that
importing a contract needs nothing from the slices above.
"""

from __future__ import annotations

from pandera.extensions import register_check_method

from integration_assets.core.payload import MISSING

__all__ = ["promised"]

_KINDS = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


def _is(value: object, kinds: str) -> bool:
    """Present (not MISSING) and of one of the `|`-separated kinds; `null` allows None."""
    if value is MISSING:
        return False
    names = kinds.split("|")
    if value is None:
        return "null" in names
    for name in names:
        if name == "null":
            continue
        if name in ("int", "number") and isinstance(value, bool):
            continue
        if isinstance(value, _KINDS[name]):
            return True
    return False


try:

    @register_check_method(statistics=["kinds"], check_type="element_wise")
    def promised(value: object, *, kinds: str) -> bool:
        """The vendor promised this key, holding a value of one of `kinds` (e.g. "str|null")."""
        return _is(value, kinds)

except ValueError:  # already registered (module reloaded)
    pass
