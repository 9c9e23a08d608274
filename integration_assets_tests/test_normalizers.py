"""Normalizers: awkward vendor values, round-trip properties, and every clean and planted-defect value of a dataset."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import iso4217
import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from integration_assets.mapping.normalize import (
    REASON_CODES,
    Money,
    Rejected,
    currency_exponent,
    is_negative,
    namespaced_id,
    normalize_email,
    normalize_instant,
    normalize_label,
    normalize_money,
    normalize_phone,
)
from integration_sandbox.generator import DEFECT_KINDS, generate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FULLWIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}  # "1" -> "\uff11"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reason(result: object) -> str | None:
    return result.reason_code if isinstance(result, Rejected) else None


# ----------------------------------------------------------------------------------------------- Rejected


def test_rejected_only_takes_known_reason_codes() -> None:
    assert Rejected("invalid_email", "x").reason_code in REASON_CODES
    with pytest.raises(ValueError, match="unknown reason code"):
        Rejected("looks_odd", "x")


# -------------------------------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("  Jane.Doe@Example.COM\t", "jane.doe@example.com"),
        ("JANE+Newsletter@Example.com", "jane+newsletter@example.com"),  # plus-addressing kept
        ("alice.berg@sandbox-support.test", "alice.berg@sandbox-support.test"),  # special-use .test accepted
        ("ops@acme-bay-labs.example", "ops@acme-bay-labs.example"),
        ("Jöhn.Müller@Bücher.DE", "jöhn.müller@bücher.de"),  # unicode local part, IDN domain
        ("a@xn--bcher-kva.de", "a@bücher.de"),  # the punycode and unicode spellings meet
        ("用户@例子.广告", "用户@例子.广告"),
        ("Jo\u0308hn@example.com", "jöhn@example.com"),  # decomposed umlaut is NFC-normalized
    ],
)
def test_email_accepted(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "jane@@example",
        "jane.example.com",
        "jane@",
        "@example.com",
        "jane doe@example.com",
        "Jane <jane@example.com>",
        "jane@localhost",
        "jane@example",
        "jane@host.invalid",
        "jane..doe@example.com",
        "mailto:jane@example.com",
    ],
)
def test_email_rejected(raw: str) -> None:
    result = normalize_email(raw)
    assert isinstance(result, Rejected) and result.reason_code == "invalid_email"
    assert repr(raw) in result.detail


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_email_empty_is_none(raw: object) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize("raw", [{"email": "a@b.com"}, 42, True, b"a@example.com", ["a@example.com"]])
def test_email_wrong_type(raw: object) -> None:
    result = normalize_email(raw)
    assert reason(result) == "invalid_email" and "must be text" in result.detail


_UNICODE_LOCAL = st.text(st.characters(categories=("Ll", "Lu", "Lo", "Nd")), min_size=1, max_size=20)
_DOMAINS = st.sampled_from(["example.com", "Bücher.de", "xn--bcher-kva.de", "例子.广告", "münchen.example", "x.test"])


@FAST
@given(st.one_of(st.emails(), st.builds(lambda local, domain: f"{local}@{domain}", _UNICODE_LOCAL, _DOMAINS)))
@example("İstanbul@Example.com")
@example("STRASSE.ß@example.com")
def test_email_is_idempotent(raw: str) -> None:
    out = normalize_email(raw)
    if isinstance(out, str):
        assert out == out.strip() and out == out.lower()
        assert normalize_email(out) == out
        assert normalize_email(f"  {out}\n") == out


# -------------------------------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0123", None, "+442079460123"),
        ("+442079460123", None, "+442079460123"),
        ("+44 (0)20 7946 0123", None, "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("+44 20 7946 0123", "US", "+442079460123"),  # a + prefix wins over the default region
        ("(212) 555-0123", "US", "+12125550123"),
        ("+1 212-555-0123", None, "+12125550123"),
        ("00 44 20 7946 0123", "FR", "+442079460123"),  # French international prefix
        ("+61 2 5550 1234", None, "+61255501234"),
        ("+33 1 99 00 12 34", None, "+33199001234"),
        ("01 99 00 12 34", "FR", "+33199001234"),
        ("+44 20 7946 0123".translate(FULLWIDTH), None, "+442079460123"),
    ],
)
def test_phone_accepted(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "why"),
    [
        ("020 7946 0123", None, "no default region"),
        ("2125550123", None, "no default region"),
        ("+44 20 7946 0123 ext. 45", None, "extension"),
        ("+1 212 555 0123 x12", None, "extension"),
        ("+1 800 FLOWERS", None, "letters"),
        ("+44 20 7946 0l23", None, "letters"),  # a lower-case L typed for a 1
        ("call me maybe", None, "look like"),
        ("ask reception", "GB", "look like"),
        ("12", None, "no default region"),
        ("12", "GB", "short"),
        ("+44", None, "look like"),
        ("+1 555 0100", None, "area code"),
        ("+44 20 7946 01234567", None, "too long"),
        ("+1 212 000 0123", None, "not a valid number"),
        ("+999 1234 5678", None, "country"),
    ],
)
def test_phone_rejected(raw: str, region: str | None, why: str) -> None:
    result = normalize_phone(raw, region)
    assert isinstance(result, Rejected) and result.reason_code == "unparseable_phone", result
    assert why in result.detail and repr(raw) in result.detail


def test_phone_empty_wrong_type_and_bad_region() -> None:
    assert normalize_phone(None) is None and normalize_phone("  ") is None
    assert reason(normalize_phone(442079460123)) == "unparseable_phone"
    with pytest.raises(ValueError, match="default_region"):
        normalize_phone("020 7946 0123", "UK")  # the region code is GB


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_TYPES = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]


@FAST
@given(st.sampled_from(_REGIONS), st.sampled_from(_TYPES))
def test_phone_example_numbers_agree_in_every_format(region: str, kind: int) -> None:
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None or not phonenumbers.is_valid_number(number):
        return
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert normalize_phone(international) == e164
    assert normalize_phone(national, region) == e164
    assert normalize_phone(e164) == e164


@FAST
@given(st.from_regex(r"\+?[0-9][0-9 ()\-]{0,18}", fullmatch=True), st.sampled_from([None, "GB", "US", "FR", "AU"]))
def test_phone_output_renormalizes_to_itself(raw: str, region: str | None) -> None:
    out = normalize_phone(raw, region)
    assert out is None or isinstance(out, Rejected) or (out.startswith("+") and out[1:].isdigit())
    if isinstance(out, str):
        assert normalize_phone(out) == out
        assert normalize_phone(out, "JP") == out


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


# ---------------------------------------------------------------------------------------- ids and labels


def test_namespaced_id() -> None:
    assert namespaced_id("crm", "123") == "crm:123"
    assert namespaced_id("support", 123) == "support:123"
    assert namespaced_id("billing", "cus_Abc123") == "billing:cus_Abc123"
    for system, raw in [
        ("crm", None),
        ("crm", ""),
        ("crm", "  "),
        ("crm", " 123"),
        ("crm", True),
        ("crm", 1.0),
        ("crm", "12\n3"),
        ("hubspot", "1"),
        ("", "1"),
    ]:
        with pytest.raises(ValueError):
            namespaced_id(system, raw)


DEAL_STAGES = {
    "appointmentscheduled": "open",
    "qualifiedtobuy": "open",
    "presentationscheduled": "open",
    "decisionmakerboughtin": "open",
    "contractsent": "open",
    "closedwon": "won",
    "closedlost": "lost",
}


def test_label() -> None:
    assert normalize_label("closedwon", DEAL_STAGES) == "won"
    assert normalize_label("  closedlost ", DEAL_STAGES) == "lost"
    assert normalize_label(None, DEAL_STAGES) is None and normalize_label(" ", DEAL_STAGES) is None
    unknown = normalize_label("closed_maybe", DEAL_STAGES)
    assert reason(unknown) == "unknown_status_label"
    assert all(f"'{label}'" in unknown.detail for label in ("closed_maybe", "closedwon", "qualifiedtobuy"))
    assert reason(normalize_label("ClosedWon", DEAL_STAGES)) == "unknown_status_label"  # case-sensitive
    assert reason(normalize_label(3, DEAL_STAGES)) == "unknown_status_label"


# ---------------------------------------------------------------------------------------- generated data


def _load(root: Path, name: str) -> list[dict]:
    return json.loads((root / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    manifest = generate(out, seed=11, scale=60, defect_rate=0)
    assert manifest["defects"] == []
    return out


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("defective")
    manifest = generate(out, seed=12, scale=60, defect_rate=1.0)
    return out, manifest["defects"]


def _ok(result: object, kind: type) -> None:
    assert isinstance(result, kind), result


def test_every_clean_value_normalizes(clean: Path) -> None:
    seen = 0
    for name in ("hubspot/companies", "hubspot/contacts", "hubspot/deals"):
        for record in _load(clean, name):
            props = record["properties"]
            namespaced_id("crm", record["id"])
            for field in ("createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate"):
                if field in props:
                    _ok(normalize_instant(props[field]), datetime)
            _ok(normalize_instant(record["createdAt"]), datetime)
            if "email" in props:
                _ok(normalize_email(props["email"]), str)
            if "phone" in props:
                _ok(normalize_phone(props["phone"]), str)
            if "amount" in props:
                _ok(normalize_money(props["amount"], props["deal_currency_code"], unit="major"), Money)
                _ok(normalize_label(props["dealstage"], DEAL_STAGES), str)
            seen += 1
    for customer in _load(clean, "stripe/customers"):
        namespaced_id("billing", customer["id"])
        _ok(normalize_email(customer["email"]), str)
        assert customer["phone"] is None or isinstance(normalize_phone(customer["phone"]), str)
        _ok(normalize_instant(customer["created"]), datetime)
    for invoice in _load(clean, "stripe/invoices"):
        for field in ("total", "amount_due", "amount_paid", "amount_remaining"):
            _ok(normalize_money(invoice[field], invoice["currency"], unit="minor"), Money)
        for field in ("created", "due_date"):
            _ok(normalize_instant(invoice[field]), datetime)
        seen += 1
    for charge in _load(clean, "stripe/charges"):
        _ok(normalize_money(charge["amount"], charge["currency"], unit="minor"), Money)
        _ok(normalize_instant(charge["created"]), datetime)
    for name in ("zendesk/organizations", "zendesk/users", "zendesk/tickets"):
        for record in _load(clean, name):
            namespaced_id("support", record["id"])
            _ok(normalize_instant(record["created_at"]), datetime)
            _ok(normalize_instant(record["updated_at"]), datetime)
            if "email" in record:
                _ok(normalize_email(record["email"]), str)
                _ok(normalize_phone(record["phone"]), str)
            seen += 1
    assert seen > 300


def test_clean_amounts_agree_across_systems(clean: Path) -> None:
    """A won deal's major-unit amount and its invoice's minor-unit total are the same Money (JPY unscaled)."""
    deals = {d["id"]: d["properties"] for d in _load(clean, "hubspot/deals")}
    invoices = _load(clean, "stripe/invoices")
    assert invoices
    for invoice in invoices:
        deal = deals[invoice["metadata"]["hubspot_deal_id"]]
        assert normalize_money(deal["amount"], deal["deal_currency_code"], unit="major") == normalize_money(
            invoice["total"], invoice["currency"], unit="minor"
        )


def _by_id(root: Path) -> dict[tuple[str, object], dict]:
    index: dict[tuple[str, object], dict] = {}
    for name in ("hubspot/contacts", "hubspot/deals", "stripe/invoices"):
        for record in _load(root, name):
            index[(name.split("/")[1], record["id"])] = record
    return index


@pytest.mark.parametrize("region", [None, "US"])
def test_every_planted_defect_is_rejected(defective: tuple[Path, list[dict]], region: str | None) -> None:
    root, defects = defective
    records = _by_id(root)
    checked: dict[str, int] = {}
    for defect in defects:
        kind = defect["kind"]
        if DEFECT_KINDS[kind][2] != "review" or kind in ("duplicate_record", "ambiguous_owner"):
            continue
        record = records[(defect["object_type"], defect["id"])]
        props = record.get("properties", {})
        if kind == "invalid_email":
            result = normalize_email(props["email"])
        elif kind == "unparseable_phone":
            result = normalize_phone(props["phone"], region)
        elif kind == "invalid_date":
            result = normalize_instant(props["closedate"])
        elif kind == "unknown_currency":
            result = normalize_money(record["total"], record["currency"], unit="minor")
        elif kind == "missing_required_field":
            assert normalize_email(props["email"]) is None  # emptiness is left to the field dictionary
            checked[kind] = checked.get(kind, 0) + 1
            continue
        elif kind == "negative_amount":
            money = normalize_money(props["amount"], props["deal_currency_code"], unit="major")
            assert isinstance(money, Money) and is_negative(money)  # returned: the dictionary rejects it
            checked[kind] = checked.get(kind, 0) + 1
            continue
        else:
            assert kind == "unknown_status_label"
            result = normalize_label(props["dealstage"], DEAL_STAGES)
        assert reason(result) == kind, (defect, result)
        checked[kind] = checked.get(kind, 0) + 1
    expected = {
        "invalid_email",
        "unparseable_phone",
        "invalid_date",
        "unknown_currency",
        "missing_required_field",
        "negative_amount",
        "unknown_status_label",
    }
    assert set(checked) == expected
    assert checked["unparseable_phone"] >= 4 and checked["invalid_email"] >= 3 and checked["invalid_date"] >= 3
