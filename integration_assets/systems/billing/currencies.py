"""Stripe's minor units: how many decimals Stripe's integer `amount` carries per currency, as Stripe documents them.

Stripe states every amount in "the currency's minor unit" (1000 is 10 USD), but its minor unit is not always
ISO-4217's: it keeps ISK and UGX two-decimal (500 is 5 ISK) though ISO made both zero-decimal, and it makes
MGA zero-decimal though ISO gives it two decimals. Read with ISO's exponents, such amounts are off by a factor
of 100. The catalog hands this table to the mapping layer (`SystemSpec.minor_units`), which reads Stripe's
amounts with it and stores ISO minor units in the canonical layer, and to the write-back, which turns canonical
amounts back into Stripe's.

A typed table in code rather than a YAML file: this is a fact of Stripe's API, changed only when Stripe
changes it, not a setting an operator chooses (configuration under `data/` is what a user may edit). Each
entry names the page it comes from; `integration_assets_tests/systems/test_billing_currencies.py` holds it
against ISO-4217 so a new difference cannot slip in unnoticed.

Read from https://docs.stripe.com/currencies ("Specify amounts in API requests"): currencies are two-decimal
unless listed. Every currency not listed here is taken at ISO-4217's exponent, which for every other currency
Stripe lists among its presentment currencies is also two, except codes ISO has withdrawn (ANG, BGN, STD):
those have no ISO minor unit, so their amounts are refused as an unknown currency rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["MINOR_UNITS", "RULES", "CurrencyRule"]

CURRENCIES_PAGE = "https://docs.stripe.com/currencies"
ZERO_DECIMAL = f"{CURRENCIES_PAGE}#zero-decimal"
THREE_DECIMAL = f"{CURRENCIES_PAGE}#three-decimal"
SPECIAL_CASES = f"{CURRENCIES_PAGE}#special-cases"
ISK_NOTICE = "https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds"

RuleKind = Literal["zero_decimal", "three_decimal", "special_case"]
_CODE = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class CurrencyRule:
    """One currency's decimals in Stripe's `amount` (amount = major units * 10**exponent), and where Stripe says so."""

    code: str
    exponent: int
    kind: RuleKind
    note: str
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _CODE.fullmatch(self.code):
            raise ValueError(f"Stripe currency rule {self.code!r}: the code must be three upper-case letters")
        if self.exponent not in (0, 2, 3):
            raise ValueError(
                f"Stripe currency rule {self.code}: exponent {self.exponent!r} is none of Stripe's 0, 2, 3"
            )
        if not self.sources or not all(s.startswith("https://") for s in self.sources):
            raise ValueError(f"Stripe currency rule {self.code}: it must name the Stripe page it comes from")


def _zero(code: str) -> CurrencyRule:
    return CurrencyRule(code, 0, "zero_decimal", "zero-decimal: the amount is in major units", (ZERO_DECIMAL,))


def _three(code: str) -> CurrencyRule:
    note = "three-decimal; on payments Stripe requires the last digit to be 0 (5.124 KWD is sent as 5120 or 5130)"
    return CurrencyRule(code, 3, "three_decimal", note, (THREE_DECIMAL,))


RULES: tuple[CurrencyRule, ...] = (
    *(_zero(code) for code in ("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF")),
    *(_zero(code) for code in ("VND", "VUV", "XAF", "XOF", "XPF")),
    *(_three(code) for code in ("BHD", "JOD", "KWD", "OMR", "TND")),
    CurrencyRule(
        "ISK",
        2,
        "special_case",
        "zero-decimal since 2023-04-14, but kept two-decimal in the API for backward compatibility: 5 ISK is "
        "500, and amounts must be multiples of 100 (ISO-4217: 0 decimals)",
        (SPECIAL_CASES, ISK_NOTICE),
    ),
    CurrencyRule(
        "UGX",
        2,
        "special_case",
        "listed among the zero-decimal currencies, but the special cases keep it two-decimal in the API for "
        "backward compatibility: 5 UGX is 500; invoices are rounded to multiples of 100 (ISO-4217: 0 decimals)",
        (SPECIAL_CASES,),
    ),
    CurrencyRule(
        "HUF",
        2,
        "special_case",
        "two-decimal in charges and invoices; only payouts are zero-decimal (multiples of 100), which this "
        "project does not read",
        (SPECIAL_CASES,),
    ),
    CurrencyRule(
        "TWD",
        2,
        "special_case",
        "two-decimal in charges and invoices; only payouts are zero-decimal (multiples of 100), which this "
        "project does not read",
        (SPECIAL_CASES,),
    ),
)


def _by_code(rules: tuple[CurrencyRule, ...]) -> Mapping[str, int]:
    found: dict[str, int] = {}
    for rule in rules:
        if rule.code in found:
            raise ValueError(f"Stripe currency rule {rule.code}: listed twice")
        found[rule.code] = rule.exponent
    return MappingProxyType(found)


# currency -> decimals of Stripe's amount: what the billing system declares to the catalog
MINOR_UNITS: Mapping[str, int] = _by_code(RULES)
