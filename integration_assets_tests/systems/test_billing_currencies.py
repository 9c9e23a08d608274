"""Stripe's minor units against ISO-4217's: the table read from Stripe's documentation, the catalog hook that
hands it to the mapping layer, and real conversions both ways (Stripe → canonical, canonical → Stripe)."""

from __future__ import annotations

import re

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_assets.core.catalog import SystemSpec
from integration_assets.mapping.normalize import Money, Rejected, currency_exponent, normalize_money, to_source_minor
from integration_assets.systems import CATALOG
from integration_assets.systems.billing import currencies
from integration_sandbox.generator.vocabulary import CURRENCIES as GENERATED_CURRENCIES

STRIPE = CATALOG.minor_units("billing")


def test_the_table_is_stripes_documented_lists() -> None:
    """https://docs.stripe.com/currencies: the zero-decimal list (UGX moved to the special cases, which override
    it), the three-decimal list and the four special cases, each entry naming its section of the page."""
    by_kind: dict[str, set[str]] = {}
    for rule in currencies.RULES:
        by_kind.setdefault(rule.kind, set()).add(rule.code)
        section = {"zero_decimal": "#zero-decimal", "three_decimal": "#three-decimal", "special_case": "#special-cases"}
        assert rule.sources[0] == "https://docs.stripe.com/currencies" + section[rule.kind], rule
    assert by_kind["zero_decimal"] == {
        *("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"),
        *("PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"),
    }
    assert by_kind["three_decimal"] == {"BHD", "JOD", "KWD", "OMR", "TND"}
    assert by_kind["special_case"] == {"ISK", "HUF", "TWD", "UGX"}
    assert {code: STRIPE[code] for code in ("ISK", "UGX", "HUF", "TWD")} == {"ISK": 2, "UGX": 2, "HUF": 2, "TWD": 2}
    assert STRIPE is currencies.MINOR_UNITS


def test_stripe_differs_from_iso_4217_for_exactly_isk_ugx_and_mga() -> None:
    """Where the two disagree is where an amount read with ISO's exponents would be off by a factor of 100."""
    differences = {
        code: (exponent, iso4217.Currency(code).exponent)
        for code, exponent in STRIPE.items()
        if exponent != iso4217.Currency(code).exponent
    }
    assert differences == {"ISK": (2, 0), "UGX": (2, 0), "MGA": (0, 2)}


def test_only_billing_declares_minor_units_of_its_own() -> None:
    assert CATALOG.minor_units("crm") == {} and CATALOG.minor_units("support") == {}
    assert CATALOG.minor_units("accounting") == {}  # a role the catalog lacks follows ISO


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ({"isk": 2}, "minor_units entry 'isk' is not an upper-case three-letter currency"),
        ({"ISK": -1}, "minor_units[ISK] = -1 is not a number of decimals 0..4"),
        ({"ISK": "2"}, "minor_units[ISK] = '2' is not a number of decimals 0..4"),
    ],
)
def test_a_system_declaring_broken_minor_units_is_refused_naming_the_entry(entry: dict, why: str) -> None:
    billing = next(s for s in CATALOG.systems if s.role == "billing")
    with pytest.raises(ValueError, match=re.escape(f"billing: {why}")):
        SystemSpec(
            billing.role,
            billing.vendor,
            billing.title,
            billing.streams,
            billing.live_total,
            billing.resource,
            minor_units=entry,
        )


@pytest.mark.parametrize(
    ("code", "exponent", "why"),
    [("isk", 2, "three upper-case letters"), ("ISK", 1, "none of Stripe's 0, 2, 3")],
)
def test_a_broken_table_entry_is_refused_naming_it(code: str, exponent: int, why: str) -> None:
    with pytest.raises(ValueError, match=f"Stripe currency rule .*{why}"):
        currencies.CurrencyRule(code, exponent, "special_case", "a note", (currencies.SPECIAL_CASES,))


@pytest.mark.parametrize(
    ("amount", "currency", "canonical"),
    [
        (500, "isk", Money(5, "ISK")),  # 5 ISK: two decimals at Stripe, none in ISO
        (150000, "isk", Money(1500, "ISK")),
        (500, "ugx", Money(5, "UGX")),  # the same special case
        (500, "mga", Money(50000, "MGA")),  # 500 MGA: zero-decimal at Stripe, two decimals in ISO
        (500, "jpy", Money(500, "JPY")),  # zero-decimal in both
        (500, "bif", Money(500, "BIF")),
        (1000, "krw", Money(1000, "KRW")),
        (5120, "kwd", Money(5120, "KWD")),  # three-decimal in both: 5.120 KWD
        (1045, "huf", Money(1045, "HUF")),  # two-decimal in charges (payouts only are zero-decimal)
        (80045, "twd", Money(80045, "TWD")),
        (1099, "usd", Money(1099, "USD")),  # not in the table: ISO's exponent
        (-500, "isk", Money(-5, "ISK")),  # the sign is kept: the field dictionary decides
    ],
)
def test_stripe_amounts_become_iso_minor_units(amount: int, currency: str, canonical: Money) -> None:
    assert normalize_money(amount, currency, unit="minor", exponents=STRIPE) == canonical
    assert to_source_minor(canonical, STRIPE) == amount  # and back, for a write


@pytest.mark.parametrize(("amount", "currency"), [(550, "isk"), (1, "ugx"), (99, "isk")])
def test_fractions_stripe_no_longer_allows_are_refused_not_rounded(amount: int, currency: str) -> None:
    found = normalize_money(amount, currency, unit="minor", exponents=STRIPE)
    assert isinstance(found, Rejected) and found.reason_code == "invalid_amount"
    assert "2 decimals" in found.detail and "would need rounding" in found.detail


def test_a_canonical_amount_stripe_cannot_hold_is_refused_for_writing() -> None:
    found = to_source_minor(Money(50050, "MGA"), STRIPE)  # 500.50 MGA: Stripe's MGA has no decimals
    assert isinstance(found, Rejected) and found.reason_code == "invalid_amount"
    assert found.detail.startswith("500.50 MGA cannot be written") and "(0 decimals)" in found.detail


def test_without_a_systems_table_amounts_keep_isos_exponent_and_major_units_ignore_it() -> None:
    assert normalize_money(500, "ISK", unit="minor") == Money(500, "ISK")  # HubSpot/Zendesk: ISO
    assert normalize_money("5", "ISK", unit="major", exponents=STRIPE) == Money(5, "ISK")
    assert normalize_money("5.00", "MGA", unit="major", exponents=STRIPE) == Money(500, "MGA")


@given(st.sampled_from(sorted(STRIPE)), st.integers(min_value=-(10**12), max_value=10**12))
def test_every_stripe_amount_round_trips_or_is_refused(code: str, amount: int) -> None:
    found = normalize_money(amount, code, unit="minor", exponents=STRIPE)
    shift = currency_exponent(code) - STRIPE[code]  # type: ignore[operator]
    if shift >= 0 or amount % 10**-shift == 0:
        assert isinstance(found, Money) and found.currency == code
        assert to_source_minor(found, STRIPE) == amount
        assert found.minor == (amount * 10**shift if shift >= 0 else amount // 10**-shift)
    else:
        assert isinstance(found, Rejected) and found.reason_code == "invalid_amount"


def test_the_generators_currencies_need_no_conversion() -> None:
    """The generator writes a deal's ISO minor units as the Stripe amount: right only while every currency it
    draws has the same exponent at Stripe. Adding ISK, UGX or MGA there must convert (this test says so)."""
    for code, _ in GENERATED_CURRENCIES:
        assert STRIPE.get(code, currency_exponent(code)) == currency_exponent(code), code
