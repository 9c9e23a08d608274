"""One raw record's fields read by the field dictionary: normalized canonical values, or the problems to review.

`read_record(dictionary, entity, system, object_type, payload)` walks every field the dictionary feeds from
that raw object and applies, per field: the path (`resolve_path`), the type's normalizer
(`mapping/normalize.py`), the format (pattern, min, max_length) and the label map. Empty values are reported
back, not judged here, except for `empty: reject` (the vendor guarantees the value, so an empty one is a broken
payload of this very record): whether a `review`/`default`/`allow` field is empty is decided on the canonical
value after the sources of a row are merged (`build.py`), because the owner's value may fill in another's.

Fields that identity resolution reads (an explicit link such as `metadata.hubspot_company_id`) are left to
`identity.py`: an empty link there means "try the next identity step", not "review".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from integration_assets.core.payload import MISSING, resolve_path
from integration_assets.mapping.normalize import (
    Money,
    Rejected,
    currency_exponent,
    namespaced_id,
    normalize_email,
    normalize_instant,
    normalize_label,
    normalize_money,
    normalize_phone,
    strip_bidi_controls,
)
from integration_assets.mapping.schema import FieldDictionary, FieldSpec, Source
from integration_assets.systems import CATALOG

__all__ = ["EMPTY", "FieldValue", "Problem", "RecordRead", "is_empty", "mask", "read_record", "remembered"]

# reason code for a value that breaks its type's format (pattern, max_length, min/max)
FORMAT_REASON = {
    "email": "invalid_email",
    "phone": "unparseable_phone",
    "instant": "invalid_date",
    "date": "invalid_date",
    "money": "invalid_amount",
    "currency": "unknown_currency",
    "label": "unknown_status_label",
}


class _Empty:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"

    def __bool__(self) -> bool:
        return False


EMPTY: Any = _Empty()  # "the source has no value": distinct from a canonical None chosen by a rule


@dataclass(frozen=True, slots=True)
class Problem:
    reason_code: str
    field: str
    detail: str


@dataclass(slots=True)
class FieldValue:
    value: Any  # canonical value, or EMPTY
    raw: Any


@dataclass(slots=True)
class RecordRead:
    values: dict[str, FieldValue] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, name: str) -> Any:
        found = self.values.get(name)
        return EMPTY if found is None else found.value


def is_empty(value: Any) -> bool:
    if value is MISSING or value is None or value is EMPTY:
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, list | dict) and not value


def mask(value: Any) -> str:
    """A PII value as a reviewer may see it: its shape, not its content."""
    if value is None or value is MISSING:
        return repr(value)
    text = str(value)
    if len(text) <= 2:
        return "*" * len(text)
    return f"{text[0]}{'*' * (len(text) - 2)}{text[-1]} ({len(text)} chars)"


def _identity_paths(dictionary: FieldDictionary, system: str, object_type: str) -> set[str]:
    return {
        step.from_.path
        for identity in dictionary.identity.values()
        for step in identity.steps
        if step.from_.system == system and step.from_.object_type == object_type and step.method == "explicit_id"
    }


_MEMO_LIMIT = 1 << 16  # distinct raw values remembered per field (cleared when full)
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class _FieldReader:
    """How one field is read from one raw object type: planned once per dictionary, not once per record, with
    the result of each distinct raw value remembered (labels, currencies, owners and numbers recur a lot)."""

    dictionary: FieldDictionary
    name: str
    spec: FieldSpec
    source: Source
    system: str
    memo: dict[tuple, tuple[Any, Problem | None]] = field(default_factory=dict)

    def read(self, payload: dict, default_region: str | None) -> tuple[Any, Any, Problem | None]:
        """(raw value, canonical value or EMPTY, problem)."""
        raw = _raw(self.source, payload)
        key = _memo_key(raw, default_region)
        if key is not None:
            found = self.memo.get(key)
            if found is not None:
                return raw, *found
        value, problem = self._judge(raw, default_region)
        if key is not None and not isinstance(value, list):
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = (value, problem)
        return raw, value, problem

    def _judge(self, raw: Any, default_region: str | None) -> tuple[Any, Problem | None]:
        name, spec, source = self.name, self.spec, self.source
        try:
            value, problem = _read(self.dictionary, name, spec, source, self.system, raw, default_region)
        except ValueError as exc:  # an id that is no id at all (namespaced_id refuses it)
            value, problem = EMPTY, Problem("contract_violation", name, f"{name}: {exc}")
        if problem is None and value is EMPTY and spec.empty == "reject":
            problem = Problem(
                "missing_required_field",
                name,
                f"{name} ({source.path or source.amount}) is empty, but the vendor guarantees it: a broken payload.",
            )
        return (EMPTY, problem) if problem is not None else (value, None)


def _memo_key(raw: Any, default_region: str | None) -> tuple | None:
    """A key telling equal values of different types apart (1, 1.0 and True), or None when not a scalar."""
    if isinstance(raw, tuple):  # money: (amount, currency)
        if all(isinstance(part, _SCALARS) for part in raw):
            return (default_region, *((type(part), part) for part in raw))
        return None
    if raw is MISSING:
        return (default_region, "MISSING")
    return (default_region, type(raw), raw) if isinstance(raw, _SCALARS) else None


_T = TypeVar("_T")


def remembered(cache: dict[tuple, tuple[Any, Any]], owner: object, key: tuple, make: Callable[[], _T]) -> _T:
    """`make()` once per `owner` (a loaded dictionary, one of its fields) and `key`: what every record of every
    build would otherwise recompute. Keyed by the owner's id and checked by identity, since a reloaded
    dictionary may reuse the id of one gone."""
    found = cache.get((id(owner), *key))
    if found is None or found[0] is not owner:
        found = cache[(id(owner), *key)] = (owner, make())
    return found[1]


_PLANS: dict[tuple, tuple[Any, Any]] = {}


def _plan(dictionary: FieldDictionary, entity: str, system: str, object_type: str) -> list[_FieldReader]:
    """The fields of `entity` this raw object feeds, each with its reader; identity's explicit links left out."""

    def plan() -> list[_FieldReader]:
        skip = _identity_paths(dictionary, system, object_type)
        return [
            _FieldReader(dictionary, name, spec, source, system)
            for name, spec in dictionary.entity(entity).fields.items()
            if (source := spec.sources.get(system)) is not None
            and source.object_type == object_type
            and not (source.path in skip and source.id_system is not None)  # an explicit link: identity.py reads it
        ]

    return remembered(_PLANS, dictionary, (entity, system, object_type), plan)


def read_record(
    dictionary: FieldDictionary,
    entity: str,
    system: str,
    object_type: str,
    payload: dict,
    *,
    default_region: str | None = None,
) -> RecordRead:
    """Every field of `entity` fed by this raw object, normalized; problems with reason codes."""
    out = RecordRead()
    for reader in _plan(dictionary, entity, system, object_type):
        raw, value, problem = reader.read(payload, default_region)
        if problem is not None:
            out.problems.append(problem)
        out.values[reader.name] = FieldValue(value, raw)
    return out


def _raw(source: Source, payload: dict) -> Any:
    if source.amount is not None:
        return (_resolve(payload, source.amount), _resolve(payload, source.currency or ""))
    return _resolve(payload, source.path or "")


@lru_cache(maxsize=1024)
def _plain_keys(path: str) -> tuple[str, ...] | None:
    """The keys of a path of plain keys (no `[]`), which `_resolve` walks without recursion."""
    return None if "[]" in path else tuple(path.split("."))


def _resolve(payload: Any, path: str) -> Any:
    """`resolve_path`, walking a path of plain keys in a loop (the common case, read for every field)."""
    keys = _plain_keys(path)
    if keys is None:
        return resolve_path(payload, path)
    value = payload
    for key in keys:
        if value is None:
            return None
        if not isinstance(value, dict):
            return MISSING
        value = value.get(key, MISSING)
        if value is MISSING:
            return MISSING
    return value


def _read(
    d: FieldDictionary,
    name: str,
    spec: FieldSpec,
    source: Source,
    system: str,
    raw: Any,
    default_region: str | None,
) -> tuple[Any, Problem | None]:
    kind = spec.type
    if kind == "money":
        amount, currency = raw
        if is_empty(amount):
            return EMPTY, None
        # the system's own minor units (Stripe's ISK has 2 decimals, ISO's 0) become ISO's here
        found = normalize_money(amount, currency, unit=source.unit or "minor", exponents=CATALOG.minor_units(system))
        if isinstance(found, Rejected):
            return EMPTY, Problem(found.reason_code, name, f"{name}: {found.detail}")
        return _check_format(name, spec, found, found.minor)
    if is_empty(raw):
        return EMPTY, None
    if kind == "id":
        return _read_id(name, spec, source, system, raw)
    if kind == "email":
        found = normalize_email(raw)
    elif kind == "phone":
        found = normalize_phone(raw, default_region)
    elif kind in ("instant", "date"):
        found = normalize_instant(raw)
        if isinstance(found, datetime) and kind == "date":
            found = found.date().isoformat()
    elif kind == "currency":
        found = _currency(raw)
    elif kind == "label":
        label_map = d.labels[source.label or ""]
        found = normalize_label(raw, label_map.map)
    elif kind == "string":
        if not isinstance(raw, str):
            return EMPTY, Problem("contract_violation", name, f"{name} must be text, got {type(raw).__name__}.")
        found = strip_bidi_controls(raw)[0].strip()  # text must not display as something it is not
    elif kind == "boolean":
        if not isinstance(raw, bool):
            return EMPTY, Problem("contract_violation", name, f"{name} must be true/false, got {raw!r}.")
        found = raw
    elif kind in ("integer", "number"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return EMPTY, Problem("contract_violation", name, f"{name} must be a number, got {raw!r}.")
        found = raw
    else:  # pragma: no cover - the dictionary's schema lists the types
        raise ValueError(f"unknown field type {kind!r}")
    if isinstance(found, Rejected):
        detail = found.detail
        if spec.pii:
            detail = detail.replace(repr(raw), mask(raw)).replace(str(raw), mask(raw))
        return EMPTY, Problem(found.reason_code, name, f"{name}: {detail}")
    if found is None:
        return EMPTY, None
    return _check_format(name, spec, found, found)


def _read_id(name: str, spec: FieldSpec, source: Source, system: str, raw: Any) -> tuple[Any, Problem | None]:
    space = source.id_system or system
    if isinstance(raw, list):
        values = [v for v in raw if not is_empty(v)]
        ids = list(dict.fromkeys(namespaced_id(space, v if isinstance(v, int) else str(v).strip()) for v in values))
        if spec.many:
            return (ids or EMPTY), None
        if len(ids) > 1:
            return EMPTY, Problem(
                "ambiguous_owner" if spec.references == "customers" else "ambiguous_reference",
                name,
                f"{name}: {len(ids)} candidates ({', '.join(ids)}) where exactly one is expected.",
            )
        return (ids[0] if ids else EMPTY), None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return EMPTY, Problem("contract_violation", name, f"{name} must be an id, got {type(raw).__name__}.")
    return namespaced_id(space, raw.strip() if isinstance(raw, str) else raw), None


def _currency(raw: Any) -> str | Rejected:
    if not isinstance(raw, str):
        return Rejected("unknown_currency", f"Currency must be an ISO-4217 code as text, got {raw!r}.")
    code = raw.strip().upper()
    if currency_exponent(code) is None:
        return Rejected("unknown_currency", f"Currency {raw!r} is not an ISO-4217 code with a minor unit.")
    return code


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_format(name: str, spec: FieldSpec, value: Any, number: Any) -> tuple[Any, Problem | None]:
    fmt = spec.format
    if fmt is None:
        return value, None
    reason = FORMAT_REASON.get(spec.type, "invalid_format")
    shown = mask(value) if spec.pii else repr(value)
    if isinstance(number, int | float) and not isinstance(number, bool):
        if fmt.min is not None and number < fmt.min:
            code = "negative_amount" if fmt.min == 0 and number < 0 else reason
            amount = value.major_text() + " " + value.currency if isinstance(value, Money) else shown
            return EMPTY, Problem(code, name, f"{name} is {amount}, below the minimum {fmt.min:g}.")
        if fmt.max is not None and number > fmt.max:
            return EMPTY, Problem(reason, name, f"{name} is {shown}, above the maximum {fmt.max:g}.")
    if isinstance(value, str):
        if fmt.max_length is not None and len(value) > fmt.max_length:
            return EMPTY, Problem(reason, name, f"{name} is longer than {fmt.max_length} characters.")
        if fmt.pattern is not None and not _pattern(fmt.pattern).fullmatch(value):
            return EMPTY, Problem(reason, name, f"{name} {shown} does not match {fmt.pattern}.")
    return value, None
