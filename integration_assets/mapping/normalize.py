"""Value normalizers: one vendor value in, the project's one canonical representation out, or a precise refusal.

Every normalizer returns the canonical value, or None for an empty value (whether a field may be empty is
the field dictionary's rule, not the normalizer's), or a `Rejected` naming the value's problem so that the
record can be marked for review. None of them guesses: a value that could mean two things, or that would
need rounding, truncation, a default country or a letter-to-digit conversion to fit, is rejected.

One maintained library per job:

* `email-validator`: RFC 5321/6531 syntax, IDNA (UTS-46) for international domains; no DNS lookups.
* `phonenumbers` (Google's libphonenumber): national and international formats, per-country validity.
* `iso4217`: the ISO-4217 "list one" published by SIX (the maintenance agency), with each code's minor-unit
  exponent. Babel was the other candidate: it agrees on JPY 0, KRW 0, BHD 3, USD 2, but its CLDR digits are
  *display* digits (HUF, IDR, COP 0 and IQD 0 where ISO says 2, 2, 2 and 3), it lists withdrawn codes (DEM,
  HRK) and it answers 2 for a code it does not know, which would turn "xyz" into a silent guess.
* Dates: `datetime.fromisoformat` behind a strict pattern, because on its own it accepts any separator
  character and silently truncates fractions finer than a microsecond.
* Names: bidirectional-control characters (U+202A to U+202E, U+2066 to U+2069, U+200E/U+200F) are removed and
  counted: in a name they only serve to make it display as something else ("Trojan Source" reordering, a
  right-to-left override that shows `gpj.exe` as `exe.jpg`), and whoever stores the name can flag the count.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal

import iso4217
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from integration_assets.systems import CATALOG

__all__ = [
    "BIDI_CONTROLS",
    "REASON_CODES",
    "SYSTEMS",
    "Money",
    "Rejected",
    "currency_exponent",
    "is_negative",
    "namespaced_id",
    "normalize_email",
    "normalize_instant",
    "normalize_label",
    "normalize_money",
    "normalize_name",
    "normalize_phone",
    "strip_bidi_controls",
    "to_source_minor",
]

REASON_CODES: frozenset[str] = frozenset(
    {
        "missing_required_field",
        "invalid_email",
        "unparseable_phone",
        "invalid_date",
        "unknown_currency",
        "invalid_amount",
        "negative_amount",
        "unknown_status_label",
    }
)
SYSTEMS: frozenset[str] = frozenset(CATALOG.roles)


@dataclass(frozen=True)
class Rejected:
    """Why a value cannot be normalized: a code to route it by, and a sentence for the reviewer.

    `detail` quotes the value unmasked; whoever displays it masks PII.
    """

    reason_code: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason_code not in REASON_CODES:
            raise ValueError(f"unknown reason code {self.reason_code!r}; expected one of {sorted(REASON_CODES)}")


def _kind(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


# --------------------------------------------------------------------------------------------------- email

# Parsing an address or a number costs ~50 µs in its library, and the same value recurs across systems (a
# person's address in the CRM and in the help desk, a switchboard number on many contacts): each distinct
# value is parsed once per process. The results are immutable (text or a frozen `Rejected`).
VALUE_CACHE_SIZE = 1 << 19


def normalize_email(value: object) -> str | Rejected | None:
    """A trimmed, lower-cased, syntactically valid address; international domains kept as Unicode (U-labels).

    Lower-casing the whole address (local part included) is the project's choice: no vendor here treats
    addresses case-sensitively, and one spelling per person is what matching across systems needs. The
    domain goes through IDNA, so `a@xn--bcher-kva.de` and `a@Bücher.de` both become `a@bücher.de`.

    `test_environment=True` accepts the special-use `.test` domain (sandbox support agents use it); it only
    lifts that one reserved name (`.example` is accepted anyway; `.invalid`, `.localhost`, dotless domains
    stay rejected) and turns DNS checks off, which `check_deliverability=False` does too: validation must
    not touch the network.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejected("invalid_email", f"Email must be text, got {_kind(value)}.")
    return _email_text(value)


@lru_cache(maxsize=VALUE_CACHE_SIZE)
def _email_text(value: str) -> str | Rejected | None:
    text = value.strip()
    if not text:
        return None
    try:
        result = validate_email(text, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        return Rejected("invalid_email", f"Email {value!r} is not a valid address: {exc}")
    return unicodedata.normalize("NFC", result.normalized.lower())


# --------------------------------------------------------------------------------------------------- phone

_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "its country calling code is missing or unknown",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "it does not look like a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "it is too short",
    phonenumbers.NumberParseException.TOO_LONG: "it is too long",
}
_IMPOSSIBLE = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "its country calling code is unknown",
    phonenumbers.ValidationResult.TOO_SHORT: "it is too short",
    phonenumbers.ValidationResult.TOO_LONG: "it is too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "its length fits no number of that country",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it lacks an area code (dialable only locally)",
}


def normalize_phone(value: object, default_region: str | None = None) -> str | Rejected | None:
    """E.164 (`+442079460123`), or the reason the number cannot be pinned down.

    Without a leading `+`, the country comes only from `default_region` (a region code such as "GB"); with
    neither, the number is rejected rather than assumed local. Extensions are rejected because E.164 cannot
    carry them and dropping them would lose data; letters are rejected because libphonenumber would silently
    map them to keypad digits, which turns a typo ("0l23") into a different number.
    """
    if default_region is not None and default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region must be a region code known to phonenumbers, got {default_region!r}")
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejected("unparseable_phone", f"Phone must be text, got {_kind(value)}.")
    return _phone_text(value, default_region)


@lru_cache(maxsize=VALUE_CACHE_SIZE)
def _phone_text(value: str, default_region: str | None) -> str | Rejected | None:
    text = value.strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and default_region is None:
            why = "it has no leading '+' country code and no default region was given, so its country is unknown"
        else:
            why = _PARSE_ERRORS.get(exc.error_type, str(exc))
        return Rejected("unparseable_phone", f"Phone {value!r} cannot be read: {why}.")
    if number.extension:
        return Rejected(
            "unparseable_phone",
            f"Phone {value!r} has an extension, which E.164 cannot carry.",
        )
    if any(ch.isalpha() for ch in text):
        return Rejected(
            "unparseable_phone",
            f"Phone {value!r} contains letters; converting them to keypad digits would be a guess.",
        )
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return Rejected("unparseable_phone", f"Phone {value!r} is not a possible number: {_IMPOSSIBLE[reason]}.")
    if not phonenumbers.is_valid_number(number):
        regions = "/".join(phonenumbers.region_codes_for_country_code(number.country_code)) or "unknown"
        return Rejected(
            "unparseable_phone",
            f"Phone {value!r} is not a valid number in the numbering plan of +{number.country_code} ({regions}).",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ------------------------------------------------------------------------------------------------- instant

_MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
_END_INSTANT = datetime(2101, 1, 1, tzinfo=UTC)  # exclusive: year 2100 is the last accepted
_END_SECONDS = (_END_INSTANT - _MIN_INSTANT) // timedelta(seconds=1)
_EPOCH_MS_FROM = 10**11  # |epoch| >= 1e11 is milliseconds (1e11 s would be the year 5138)
_ISO_INSTANT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.(?P<frac>[0-9]+))?)?(?P<tz>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_EPOCH_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def normalize_instant(value: object) -> datetime | Rejected | None:
    """A timezone-aware UTC datetime from ISO-8601 text, epoch seconds/milliseconds or an aware datetime.

    Accepted: `2026-02-28T10:00:00Z`, offsets (`+05:45`, `+0545`, `+05`), up to 6 fraction digits, a space or
    `T` separator; a date alone (`2026-02-28`) is midnight UTC. A date-time without an offset is rejected:
    it is ambiguous, as is a naive datetime. Epochs (int, float, Decimal or digit text) are milliseconds when
    |v| >= 1e11, else seconds, so milliseconds before 1973-03-03 read as seconds past 2100 and are rejected.
    ISO's basic format is not accepted: digit-only text is always an epoch ("20260228" is 1970-08-23).
    Accepted years are 1970..2100 in UTC.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return Rejected("invalid_date", f"Datetime {value!r} has no timezone, so the instant is ambiguous.")
        return _in_range(value, value)
    if isinstance(value, date):
        return _in_range(datetime.combine(value, time(0), UTC), value)
    if isinstance(value, bool):
        return Rejected("invalid_date", f"{_kind(value)} is not a date or epoch.")
    if isinstance(value, int):
        return _from_epoch(Decimal(value), value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return Rejected("invalid_date", f"Epoch {value!r} is not a finite number.")
        return _from_epoch(Decimal(repr(value)), value)  # repr: the shortest text that reads back as this float
    if isinstance(value, Decimal):
        if not value.is_finite():
            return Rejected("invalid_date", f"Epoch {value!r} is not a finite number.")
        return _from_epoch(value, value)
    if not isinstance(value, str):
        return Rejected("invalid_date", f"Expected ISO-8601 text, an epoch or an aware datetime, got {_kind(value)}.")
    text = value.strip()
    if not text:
        return None
    if _EPOCH_TEXT.fullmatch(text):
        return _from_epoch(Decimal(text), value)
    match = _ISO_INSTANT.fullmatch(text)
    if match is None:
        return Rejected("invalid_date", f"Date {value!r} is neither ISO-8601 nor an epoch number.")
    has_time = len(text) > len(match["date"])
    if has_time and match["tz"] is None:
        return Rejected("invalid_date", f"Date {value!r} has no timezone offset, so the instant is ambiguous.")
    if match["frac"] is not None and len(match["frac"]) > 6:
        return Rejected("invalid_date", f"Date {value!r} is more precise than a microsecond; it would be truncated.")
    try:
        if has_time:
            parsed = datetime.fromisoformat(text.upper())
        else:
            parsed = datetime.combine(date.fromisoformat(text), time(0), UTC)
    except ValueError as exc:
        return Rejected("invalid_date", f"Date {value!r} is not a real date or time: {exc}.")
    return _in_range(parsed, value)


def _in_range(moment: datetime, original: object) -> datetime | Rejected:
    # Offsets are under 24 h, so a local year outside 1969..2101 is out of range in UTC too (and converting
    # it could overflow datetime's year 9999).
    if 1969 <= moment.year <= 2101:
        utc = moment.astimezone(UTC)
        if _MIN_INSTANT <= utc < _END_INSTANT:
            return utc
        shown = utc.isoformat()
    else:
        shown = moment.isoformat()
    return Rejected("invalid_date", f"Date {original!r} ({shown}) lies outside the years 1970 to 2100 (UTC).")


def _from_epoch(number: Decimal, original: object) -> datetime | Rejected:
    milliseconds = abs(number) >= _EPOCH_MS_FROM
    unit = "milliseconds" if milliseconds else "seconds"
    if number < 0 or number >= (_END_SECONDS * 1000 if milliseconds else _END_SECONDS):
        return Rejected(
            "invalid_date",
            f"Epoch {original!r} (read as {unit}) lies outside the years 1970 to 2100.",
        )
    micros = _shift_exact(number, 3 if milliseconds else 6)
    if micros is None:
        return Rejected("invalid_date", f"Epoch {original!r} is more precise than a microsecond.")
    return _MIN_INSTANT + timedelta(microseconds=micros)


# --------------------------------------------------------------------------------------------------- money


@lru_cache(maxsize=1024)
def currency_exponent(code: str) -> int | None:
    """ISO-4217 minor-unit exponent of an upper-case code (JPY 0, USD 2, BHD 3); None if unknown or N.A."""
    try:
        return iso4217.Currency(code).exponent
    except ValueError:
        return None


@dataclass(frozen=True)
class Money:
    """An exact amount: integer minor units of an ISO-4217 currency (cents; yen for JPY; fils/1000 for BHD)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError(f"Money.minor must be an int, got {_kind(self.minor)}")
        if not isinstance(self.currency, str) or currency_exponent(self.currency) is None:
            raise ValueError(
                f"Money.currency must be an upper-case ISO-4217 code with a minor unit, got {self.currency!r}"
            )

    def major_text(self) -> str:
        """The amount in major units as plain decimal text: "1234.50", "150000" for JPY, "-0.005" for BHD."""
        exponent = currency_exponent(self.currency) or 0
        if exponent == 0:
            return str(self.minor)
        whole, fraction = divmod(abs(self.minor), 10**exponent)
        sign = "-" if self.minor < 0 else ""
        return f"{sign}{whole}.{fraction:0{exponent}d}"


def is_negative(money: Money) -> bool:
    """True below zero (a negative zero does not exist in minor units)."""
    return money.minor < 0


_MAJOR_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_MINOR_TEXT = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 1000  # a Decimal("1e999999999") must not make us build a billion-digit integer


def normalize_money(
    amount: object,
    currency: object,
    *,
    unit: Literal["major", "minor"],
    exponents: Mapping[str, int] | None = None,
) -> Money | Rejected:
    """Exact Money from a major-unit decimal (HubSpot: "12500.00", "150000" JPY) or integer minor units (Stripe).

    `exponents` are the source's own decimals per currency where its minor units are not ISO-4217's (the
    system's `minor_units` in the catalog: Stripe's ISK amount 500 is 5 ISK, which ISO counts as 5 minor
    units): minor units are read with them and returned in ISO's. An amount whose ISO value would need
    rounding (Stripe ISK 550, that is 5.50 ISK) is rejected. Major units are the same everywhere.

    Decimal and integer arithmetic only. Extra decimals are accepted only when they are zeros ("10.000" USD is
    exactly 1000 cents); "10.005" USD or "100.5" JPY would need rounding and are rejected. Text must be a plain
    decimal: thousands separators are locale-dependent and scientific notation is no vendor's format. Floats
    are accepted in major units only, read through their shortest repr (the JSON text for up to 15 significant
    digits). Negative amounts are returned: whether they are allowed is the field dictionary's rule. A missing
    amount is `missing_required_field`, a missing currency `unknown_currency`.
    """
    if unit not in ("major", "minor"):
        raise ValueError(f"unit must be 'major' or 'minor', got {unit!r}")
    found = _currency(currency)
    if isinstance(found, Rejected):
        return found
    code, exponent = found
    number = _amount(amount, unit)
    if isinstance(number, Rejected):
        return number
    if number.adjusted() > _MAX_DIGITS:
        return Rejected("invalid_amount", f"Amount {amount!r} is implausibly large.")
    source_exponent = exponent if unit == "major" or exponents is None else exponents.get(code, exponent)
    minor = _shift_exact(number, exponent if unit == "major" else exponent - source_exponent)
    if minor is None:
        if unit == "minor" and source_exponent != exponent:
            return Rejected(
                "invalid_amount",
                f"Amount {amount!r} in the source's minor units of {code} ({source_exponent} decimals) has more "
                f"decimals than ISO-4217 gives {code} ({exponent}); it would need rounding.",
            )
        if unit == "minor":
            return Rejected("invalid_amount", f"Amount {amount!r} in minor units of {code} is not a whole number.")
        return Rejected(
            "invalid_amount",
            f"Amount {amount!r} has more decimals than {code} allows ({exponent}); it would need rounding.",
        )
    return Money(minor, code)


def to_source_minor(money: Money, exponents: Mapping[str, int]) -> int | Rejected:
    """The amount in a system's own minor units (its catalog `minor_units`), for writing it back: Money(5, "ISK")
    is 500 for Stripe. Rejected when the system's unit cannot hold it exactly (50.50 MGA, zero-decimal at
    Stripe): a write must not round money."""
    exponent = currency_exponent(money.currency) or 0
    shift = exponents.get(money.currency, exponent) - exponent
    if shift >= 0:
        return money.minor * 10**shift
    whole, rest = divmod(abs(money.minor), 10**-shift)
    if rest:
        return Rejected(
            "invalid_amount",
            f"{money.major_text()} {money.currency} cannot be written in the destination's minor units of "
            f"{money.currency} ({exponent + shift} decimals) without rounding.",
        )
    return -whole if money.minor < 0 else whole


def _currency(value: object) -> tuple[str, int] | Rejected:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Rejected("unknown_currency", "Currency is missing, so the amount cannot be read.")
    if not isinstance(value, str):
        return Rejected("unknown_currency", f"Currency must be an ISO-4217 code as text, got {_kind(value)}.")
    code = value.strip().upper()
    try:
        entry = iso4217.Currency(code)
    except ValueError:
        return Rejected("unknown_currency", f"Currency {value!r} is not an ISO-4217 code.")
    if entry.exponent is None:
        return Rejected(
            "unknown_currency",
            f"Currency {value!r} ({entry.currency_name}) has no minor unit in ISO-4217, so amounts cannot be scaled.",
        )
    return code, entry.exponent


def _amount(value: object, unit: str) -> Decimal | Rejected:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Rejected("missing_required_field", "Amount is missing.")
    if isinstance(value, bool):
        return Rejected("invalid_amount", f"Amount must be a number, got {_kind(value)}.")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return Rejected("invalid_amount", f"Amount {value!r} is not a finite number.")
        return value
    if isinstance(value, float):
        if unit == "minor":
            return Rejected("invalid_amount", f"Minor units must be an integer, got float {value!r}.")
        if not math.isfinite(value):
            return Rejected("invalid_amount", f"Amount {value!r} is not a finite number.")
        return Decimal(repr(value))  # the shortest text that reads back as this float
    if not isinstance(value, str):
        return Rejected("invalid_amount", f"Amount must be a number or decimal text, got {_kind(value)}.")
    text = value.strip()
    if (_MINOR_TEXT if unit == "minor" else _MAJOR_TEXT).fullmatch(text):
        return Decimal(text)
    if "," in text:
        why = "thousands or decimal commas are locale-dependent"
    elif "e" in text.lower() and _looks_scientific(text):
        why = "scientific notation is not accepted"
    elif unit == "minor":
        why = "minor units must be a whole number such as 1250"
    else:
        why = "expected a plain decimal such as 1234.50"
    return Rejected("invalid_amount", f"Amount {value!r} is not a number: {why}.")


def _looks_scientific(text: str) -> bool:
    mantissa, _, exponent = text.lower().partition("e")
    return bool(re.fullmatch(r"[+-]?[0-9.]+", mantissa) and re.fullmatch(r"[+-]?[0-9]+", exponent))


def _shift_exact(number: Decimal, places: int) -> int | None:
    """number * 10**places as an int, or None if that is not whole. Pure integer arithmetic: no context rounding."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: callers reject NaN and infinities
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + places
    if coefficient == 0:
        return 0
    if -shift > len(digits):  # all digits lie below the unit (and 10**-shift could be astronomically large)
        return None
    if shift >= 0:
        result = coefficient * 10**shift
    else:
        result, rest = divmod(coefficient, 10**-shift)
        if rest:
            return None
    return -result if sign else result


# ----------------------------------------------------------------------------------------- ids and labels


def vendor_id(canonical_id: object) -> str:
    """`billing:in_123` → `in_123`: the id the vendor (and the review queue) knows a record by."""
    text = "" if canonical_id is None else str(canonical_id)
    return text.split(":", 1)[1] if ":" in text else text


def namespaced_id(system: str, raw_id: object) -> str:
    """`system:raw_id`, so ids from different vendors can never collide ("crm:123", "support:123").

    Raises ValueError (a caller's bug, not a data defect) for an unknown system or an id that is None, empty,
    not a str/int, or padded with whitespace.
    """
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {sorted(SYSTEMS)}, got {system!r}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise ValueError(f"{system} id must be a non-empty str or an int, got {_kind(raw_id)}")
    text = str(raw_id)
    if not text.strip():
        raise ValueError(f"{system} id is empty")
    if text != text.strip() or not text.isprintable():
        raise ValueError(f"{system} id {text!r} has surrounding whitespace or unprintable characters")
    return f"{system}:{text}"


def normalize_label(value: object, mapping: Mapping[str, str]) -> str | Rejected | None:
    """The canonical label for a vendor status/stage label: exact (case-sensitive) match after trimming.

    Vendors' labels are case-sensitive ids ("closedwon"), so "ClosedWon" is unknown rather than guessed.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejected("unknown_status_label", f"Label must be text, got {_kind(value)}.")
    key = value.strip()
    if not key:
        return None
    if key in mapping:
        return mapping[key]
    known = ", ".join(repr(label) for label in sorted(mapping))
    return Rejected("unknown_status_label", f"Label {value!r} is not a known label; known labels: {known}.")


# --------------------------------------------------------------------------------------------------- names

# The embeddings, overrides and isolates (U+202A to U+202E, U+2066 to U+2069) and the two marks (U+200E, U+200F).
BIDI_CONTROLS: frozenset[str] = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def strip_bidi_controls(text: str) -> tuple[str, int]:
    """`text` without its bidirectional-control characters, and how many there were (0: unchanged), so the
    caller can flag a record whose name was made to display as something it is not."""
    cleaned, removed = _BIDI.subn("", text)
    return cleaned, removed


def normalize_name(value: str) -> str | None:
    """A person's or an organization's name: bidi controls removed, then trimmed; None when nothing is left.

    Nothing else is changed (case, inner spacing and every other character are the vendor's): a name is not
    ours to correct, only to keep from lying about how it reads. Count what was removed with
    `strip_bidi_controls` to flag it."""
    cleaned, _ = strip_bidi_controls(value)
    return cleaned.strip() or None
