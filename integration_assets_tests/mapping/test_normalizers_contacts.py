"""Normalizers for contact details: the Rejected reason codes, email addresses and phone numbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from integration_assets.mapping.normalize import REASON_CODES, Rejected, normalize_email, normalize_phone
from integration_assets_tests.testing.normalizers import FAST, reason

FULLWIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}  # "1" -> "\uff11"


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
