"""Stripe's request parameters: form-encoded bracket notation, coerced and refused the way Stripe does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from integration_sandbox.kit import Request
from integration_sandbox.vendors.stripe.errors import bad

# Stripe's presentment currencies (https://docs.stripe.com/currencies#presentment-currencies): an invoice or
# charge may be in any of them, the zero-decimal (bif, jpy, mga, ugx as a special case, ...) and three-decimal
# ones (bhd, jod, kwd, omr, tnd) included; amounts are kept as sent, in Stripe's minor units of each
_CURRENCY_CODES = (
    "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf "
    "chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf "
    "idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop "
    "mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd "
    "scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof "
    "xpf yer zar zmw"
)
CURRENCIES = frozenset(_CURRENCY_CODES.split())
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=1&e[]=x` → `{"a": {"b": [{"c": "1"}]}, "e": ["x"]}`; every leaf stays a string."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_BRACKET.findall(key[len(head) :])]
        node = root
        for depth, part in enumerate(parts):
            name = part if part != "" else str(len(node))  # `a[]` appends
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


CLEAR = object()  # `metadata=` (empty): unset every key


class Params:
    """Decoded request parameters, read the way Stripe coerces and rejects them."""

    def __init__(self, pairs: Iterable[tuple[str, str]], allowed: Iterable[str]) -> None:
        self.data = decode_form(pairs)
        allowed = set(allowed)
        for name in self.data:
            if name not in allowed:
                raise bad(f"Received unknown parameter: {name}", name)

    def has(self, name: str) -> bool:
        return name in self.data

    def text(self, name: str, *, required: bool = False, max_length: int | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise bad(f"Missing required param: {name}.", name)
            return None
        if not isinstance(value, str):
            raise bad(f"Invalid string: {_shown(value)}", name)
        if max_length is not None and len(value) > max_length:
            raise bad(f"Invalid string: {value[:40]}...; must be at most {max_length} characters", name)
        return value

    def nullable_text(self, name: str, max_length: int | None = None) -> str | None:
        """An optional string where the empty string unsets the field."""
        value = self.text(name, max_length=max_length)
        return value if value else None

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        return parse_integer(self.data.get(name), name, required=required, minimum=minimum, maximum=maximum)

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise bad(f"Invalid boolean: {_shown(value)}", name)

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.text(name)
        choices = tuple(choices)
        if value is not None and value not in choices:
            listed = ", ".join(f"`{c}`" for c in choices)
            raise bad(f"Invalid {name}: must be one of {listed}", name)
        return value

    def currency(self, name: str = "currency") -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in CURRENCIES:
            supported = ", ".join(sorted(CURRENCIES))
            raise bad(
                f"Invalid currency: {value.lower()}. Stripe currently supports these currencies: {supported}",
                name,
            )
        return value.lower()

    def metadata(self) -> dict[str, str | None] | object | None:
        """Metadata updates: key → value or None (unset the key); `CLEAR` unsets all; None: not sent."""
        value = self.data.get("metadata")
        if value is None:
            return None
        if value == "":
            return CLEAR
        if isinstance(value, list):  # metadata[0]=x decodes as a list
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise bad("Invalid object", "metadata")
        if len(value) > 50:
            raise bad("You can have at most 50 metadata keys.", "metadata")
        updates: dict[str, str | None] = {}
        for key, item in value.items():
            if not isinstance(item, str):
                raise bad("Metadata values must be strings.", f"metadata[{key}]")
            if len(key) > 40:
                raise bad(
                    f"Metadata keys can have up to 40 characters, but you passed in a key that is {len(key)} "
                    f"characters. Invalid key: {key}",
                    "metadata",
                )
            if len(item) > 500:
                raise bad(
                    f"Metadata values can have up to 500 characters, but you passed in a value that is "
                    f"{len(item)} characters. Invalid value: {item[:40]}...",
                    f"metadata[{key}]",
                )
            updates[key] = item if item != "" else None
        return updates

    def expand(self, *, in_list: bool = False) -> frozenset[str]:
        value = self.data.get("expand")
        if value is None:
            return frozenset()
        items = value if isinstance(value, list) else [value]
        names = {str(v) for v in items if isinstance(v, str)}
        if in_list:
            names = {n.removeprefix("data.") for n in names}
        return frozenset(names)


def query_params(request: Request, allowed: Iterable[str]) -> Params:
    """The query string's parameters (GET and DELETE)."""
    return Params(((k, v) for k, values in request.query.items() for v in values), allowed)


def form_params(request: Request, allowed: Iterable[str]) -> Params:
    """A POST's form body and query string together, as Stripe reads them."""
    pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    pairs += [(k, v) for k, values in request.query.items() for v in values]
    return Params(pairs, allowed)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_integer(
    value: Any, name: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    if value is None or value == "":
        if required:
            raise bad(f"Missing required param: {name}.", name)
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad(f"Invalid integer: {_shown(value)}", name) from None
    if minimum is not None and number < minimum:
        raise bad(f"This value must be greater than or equal to {minimum}.", name)
    if maximum is not None and number > maximum:
        raise bad(f"This value must be less than or equal to {maximum}.", name)
    return number


def merge_metadata(current: dict[str, str], updates: dict[str, str | None] | object | None) -> dict[str, str]:
    if updates is None:
        return dict(current)
    if updates is CLEAR:
        return {}
    merged = dict(current)
    for key, value in updates.items():  # type: ignore[union-attr]
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
