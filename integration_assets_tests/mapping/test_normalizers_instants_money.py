"""Normalizers for instants and money, and that no normalizer raises on any value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import iso4217
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from integration_assets.mapping.normalize import (
    Money,
    Rejected,
    currency_exponent,
    is_negative,
    normalize_email,
    normalize_instant,
    normalize_label,
    normalize_money,
    normalize_phone,
)
from integration_assets_tests.testing.normalizers import FAST, reason

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------ instant


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-04T05:06:07.123Z", utc(2026, 3, 4, 5, 6, 7, 123000)),  # HubSpot
        ("2026-03-04T05:06:07Z", utc(2026, 3, 4, 5, 6, 7)),  # Zendesk
        ("2026-03-04t05:06:07z", utc(2026, 3, 4, 5, 6, 7)),
        ("2026-03-04 05:06:07Z", utc(2026, 3, 4, 5, 6, 7)),
        ("2024-02-29T12:00:00Z", utc(2024, 2, 29, 12)),  # leap day
        ("2024-02-29", utc(2024, 2, 29)),  # date alone: midnight UTC
        ("2026-02-28", utc(2026, 2, 28)),
        ("2026-03-01T00:30:00+05:45", utc(2026, 2, 28, 18, 45)),  # Nepal: crosses the day back
        ("2026-03-01T00:30+0545", utc(2026, 2, 28, 18, 45)),
        ("2026-02-28T20:00:00-05", utc(2026, 3, 1, 1)),
        ("2026-02-28T23:00:00-00:00", utc(2026, 2, 28, 23)),
        ("2026-01-01T00:00:00.5+14:00", utc(2025, 12, 31, 10, 0, 0, 500000)),
        ("2026-01-01T00:00:00.123456Z", utc(2026, 1, 1, 0, 0, 0, 123456)),
        ("1970-01-01T00:00:00Z", utc(1970, 1, 1)),
        ("2100-12-31T23:59:59.999999Z", utc(2100, 12, 31, 23, 59, 59, 999999)),
        (1772340000, utc(2026, 3, 1, 4, 40)),  # Stripe epoch seconds
        ("1772340000", utc(2026, 3, 1, 4, 40)),
        (1772340000123, utc(2026, 3, 1, 4, 40, 0, 123000)),  # HubSpot search filters use ms
        ("1772340000123", utc(2026, 3, 1, 4, 40, 0, 123000)),
        (1772340000.25, utc(2026, 3, 1, 4, 40, 0, 250000)),
        ("1772340000.000001", utc(2026, 3, 1, 4, 40, 0, 1)),
        (Decimal("1772340000123.5"), utc(2026, 3, 1, 4, 40, 0, 123500)),
        (100_000_000_000, utc(1973, 3, 3, 9, 46, 40)),  # 1e11: the first value read as milliseconds
        (0, utc(1970, 1, 1)),
        (datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=-8))), utc(2026, 3, 1, 20)),
        (date(2026, 3, 1), utc(2026, 3, 1)),
    ],
)
def test_instant_accepted(raw: object, expected: datetime) -> None:
    out = normalize_instant(raw)
    assert out == expected and isinstance(out, datetime) and out.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("2026-02-30T00:00:00.000Z", "not a real date"),
        ("2026-13-01T00:00:00.000Z", "not a real date"),
        ("2026-04-31T00:00:00.000Z", "not a real date"),
        ("2025-02-29", "not a real date"),  # not a leap year
        ("2026-02-28T24:00:00Z", "not a real"),
        ("2026-02-28T23:59:60Z", "not a real"),  # leap second
        ("2026-02-28T10:00:00+24:00", "not a real"),
        ("2026-02-28T10:00:00", "no timezone"),
        ("2026-02-28T10:00:00.1234567Z", "microsecond"),  # stdlib would truncate silently
        ("2026-02-28x10:00:00Z", "neither ISO-8601"),  # stdlib accepts any separator
        ("20260228T100000Z", "neither ISO-8601"),
        ("2026-W09-6", "neither ISO-8601"),
        ("28/02/2026", "neither ISO-8601"),
        ("yesterday", "neither ISO-8601"),
        ("1969-12-31T23:59:59Z", "outside the years"),
        ("2101-01-01T00:00:00Z", "outside the years"),
        ("2100-12-31T23:30:00-01:00", "outside the years"),  # 2101 in UTC
        ("1970-01-01T00:30:00+01:00", "outside the years"),  # 1969 in UTC
        ("9999-12-31T23:00:00-05:00", "outside the years"),
        (99_999_999_999, "read as seconds"),  # just below the ms boundary: seconds, year 5138
        (-1, "outside the years"),
        (5_000_000_000_000, "read as milliseconds"),  # year 2128
        ("1772340000.0000001", "microsecond"),
        (datetime(2026, 3, 1, 12), "no timezone"),
        (True, "not a date"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        ({"date": "2026-01-01"}, "Expected ISO-8601"),
    ],
)
def test_instant_rejected(raw: object, why: str) -> None:
    result = normalize_instant(raw)
    assert isinstance(result, Rejected) and result.reason_code == "invalid_date", result
    assert why in result.detail


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_instant_empty_is_none(raw: object) -> None:
    assert normalize_instant(raw) is None


_IN_RANGE = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31, 23, 59, 59, 999999))
_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@FAST
@given(_IN_RANGE, _OFFSETS)
@example(datetime(2024, 2, 29, 23, 59, 59), timezone(timedelta(hours=5, minutes=45)))
def test_instant_isoformat_round_trips(naive: datetime, offset: timezone) -> None:
    d = naive.replace(tzinfo=UTC)
    local = d.astimezone(offset)
    assert normalize_instant(local.isoformat()) == d
    assert normalize_instant(local) == d
    assert normalize_instant(d.isoformat().replace("+00:00", "Z")) == d


@FAST
@given(st.datetimes(min_value=datetime(1973, 3, 3, 9, 46, 40), max_value=datetime(2100, 12, 31, 23, 59, 59, 999999)))
def test_instant_epoch_ms_round_trips(naive: datetime) -> None:
    d = naive.replace(tzinfo=UTC, microsecond=naive.microsecond // 1000 * 1000)
    ms = (d - EPOCH) // timedelta(milliseconds=1)
    assert ms >= 10**11
    assert normalize_instant(ms) == d
    assert normalize_instant(str(ms)) == d


@FAST
@given(st.integers(min_value=0, max_value=(datetime(2101, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(seconds=1) - 1))
def test_instant_epoch_seconds_round_trip(seconds: int) -> None:
    assert normalize_instant(seconds) == EPOCH + timedelta(seconds=seconds)


# -------------------------------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amount", "currency", "unit", "expected"),
    [
        ("12500.00", "USD", "major", Money(1250000, "USD")),  # HubSpot
        ("12499.99", "EUR", "major", Money(1249999, "EUR")),
        ("150000", "JPY", "major", Money(150000, "JPY")),  # zero-decimal
        ("150000.00", "JPY", "major", Money(150000, "JPY")),  # zeros past the exponent are exact
        ("10.000", "USD", "major", Money(1000, "USD")),
        ("1.234", "BHD", "major", Money(1234, "BHD")),  # three-decimal
        ("0.005", "KWD", "major", Money(5, "KWD")),
        ("1000", "KRW", "major", Money(1000, "KRW")),
        ("1.0001", "CLF", "major", Money(10001, "CLF")),  # four-decimal
        ("-12500.00", "USD", "major", Money(-1250000, "USD")),  # negative kept: the dictionary decides
        ("-0.00", "USD", "major", Money(0, "USD")),  # negative zero is zero
        ("+5", "GBP", "major", Money(500, "GBP")),
        (" 12.5 ", "gbp", "major", Money(1250, "GBP")),
        (12500, "USD", "major", Money(1250000, "USD")),
        (12.5, "USD", "major", Money(1250, "USD")),  # float read through its shortest repr
        (0.1, "USD", "major", Money(10, "USD")),
        (Decimal("1E+3"), "USD", "major", Money(100000, "USD")),
        (Decimal("12.50"), "usd", "major", Money(1250, "USD")),
        ("123456789012345678901234567890.12", "USD", "major", Money(12345678901234567890123456789012, "USD")),
        (1250000, "usd", "minor", Money(1250000, "USD")),  # Stripe
        (150000, "jpy", "minor", Money(150000, "JPY")),
        (1234, "bhd", "minor", Money(1234, "BHD")),
        ("1250000", "usd", "minor", Money(1250000, "USD")),
        (-500, "usd", "minor", Money(-500, "USD")),
        (Decimal("1250"), "usd", "minor", Money(1250, "USD")),
    ],
)
def test_money_accepted(amount: object, currency: str, unit: str, expected: Money) -> None:
    assert normalize_money(amount, currency, unit=unit) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "unit", "code", "why"),
    [
        ("10.005", "USD", "major", "invalid_amount", "more decimals than USD allows (2)"),
        ("100.5", "JPY", "major", "invalid_amount", "more decimals than JPY allows (0)"),
        ("1.2345", "BHD", "major", "invalid_amount", "BHD allows (3)"),
        ("1,000.00", "USD", "major", "invalid_amount", "commas"),
        ("1.000,00", "EUR", "major", "invalid_amount", "commas"),
        ("1e3", "USD", "major", "invalid_amount", "scientific"),
        ("1.5E+2", "USD", "major", "invalid_amount", "scientific"),
        ("$12.50", "USD", "major", "invalid_amount", "plain decimal"),
        ("12.50 USD", "USD", "major", "invalid_amount", "plain decimal"),
        ("12.", "USD", "major", "invalid_amount", "plain decimal"),
        (".5", "USD", "major", "invalid_amount", "plain decimal"),
        ("NaN", "USD", "major", "invalid_amount", "plain decimal"),
        ("Infinity", "USD", "major", "invalid_amount", "plain decimal"),
        ("١٢٣", "USD", "major", "invalid_amount", "plain decimal"),  # Arabic-Indic digits
        (float("nan"), "USD", "major", "invalid_amount", "finite"),
        (Decimal("-Infinity"), "USD", "major", "invalid_amount", "finite"),
        (True, "USD", "major", "invalid_amount", "must be a number"),
        ([12], "USD", "major", "invalid_amount", "must be a number"),
        (12.5, "USD", "minor", "invalid_amount", "must be an integer"),
        ("12.50", "USD", "minor", "invalid_amount", "whole number"),
        (Decimal("12.5"), "USD", "minor", "invalid_amount", "not a whole number"),
        (Decimal("1E+2000"), "USD", "major", "invalid_amount", "implausibly large"),
        (None, "USD", "major", "missing_required_field", "missing"),
        ("  ", "USD", "minor", "missing_required_field", "missing"),
        ("10", "xyz", "major", "unknown_currency", "not an ISO-4217 code"),  # the planted defect
        (1000, "xyz", "minor", "unknown_currency", "not an ISO-4217 code"),
        ("10", "DEM", "major", "unknown_currency", "not an ISO-4217 code"),  # withdrawn
        ("10", "US$", "major", "unknown_currency", "not an ISO-4217 code"),
        ("10", "XAU", "major", "unknown_currency", "no minor unit"),  # gold: exponent N.A.
        ("10", "XXX", "major", "unknown_currency", "no minor unit"),
        ("10", "", "major", "unknown_currency", "missing"),
        ("10", None, "major", "unknown_currency", "missing"),
        ("10", 840, "major", "unknown_currency", "as text"),
    ],
)
def test_money_rejected(amount: object, currency: object, unit: str, code: str, why: str) -> None:
    result = normalize_money(amount, currency, unit=unit)
    assert isinstance(result, Rejected) and result.reason_code == code, result
    assert why in result.detail


def test_currency_exponents_come_from_iso_4217() -> None:
    assert [currency_exponent(c) for c in ("USD", "JPY", "KRW", "BHD", "CLF", "HUF", "IQD")] == [2, 0, 0, 3, 4, 2, 3]
    assert currency_exponent("XYZ") is None and currency_exponent("XAU") is None


def test_money_type_and_text() -> None:
    assert Money(123450, "USD").major_text() == "1234.50"
    assert Money(150000, "JPY").major_text() == "150000"
    assert Money(-5, "BHD").major_text() == "-0.005"
    assert Money(-1250, "EUR").major_text() == "-12.50"
    assert is_negative(Money(-1, "USD")) and not is_negative(Money(0, "USD"))
    with pytest.raises(TypeError):
        Money(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")
    with pytest.raises(ValueError):
        Money(1, "usd")
    with pytest.raises(ValueError):
        Money(1, "XYZ")
    with pytest.raises(ValueError):
        normalize_money("1", "USD", unit="cents")  # type: ignore[arg-type]


_CURRENCIES = sorted(c.code for c in iso4217.Currency if c.exponent is not None)


@FAST
@given(st.integers(min_value=-(10**24), max_value=10**24), st.sampled_from(_CURRENCIES))
@example(0, "JPY")
@example(-1, "BHD")
def test_money_major_text_round_trips(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert normalize_money(money.major_text(), currency, unit="major") == money
    assert normalize_money(money.major_text(), currency.lower(), unit="major") == money
    assert normalize_money(minor, currency.lower(), unit="minor") == money
    assert normalize_money(str(minor), currency, unit="minor") == money
    # one more non-zero decimal than the currency allows always needs rounding
    longer = money.major_text() + ("1" if currency_exponent(currency) else ".1")
    assert reason(normalize_money(longer, currency, unit="major")) == "invalid_amount"


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)


@FAST
@given(_ANY, st.one_of(st.sampled_from(["USD", "jpy", "BHD", "xyz", "", " eur "]), st.text(max_size=4)))
def test_money_is_exact_or_rejected_never_floatish(amount: object, currency: object) -> None:
    for unit in ("major", "minor"):
        result = normalize_money(amount, currency, unit=unit)
        assert isinstance(result, Money | Rejected)
        if isinstance(result, Money):
            assert type(result.minor) is int and result.currency == result.currency.upper()


@FAST
@given(_ANY)
def test_normalizers_never_raise(value: object) -> None:
    for out in (normalize_email(value), normalize_phone(value), normalize_phone(value, "GB"), normalize_instant(value)):
        assert out is None or isinstance(out, str | datetime | Rejected)
    assert normalize_label(value, {"open": "open"}) in (None, "open") or isinstance(
        normalize_label(value, {"open": "open"}), Rejected
    )
