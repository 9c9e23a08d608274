"""Names: bidirectional-control characters removed and counted, nothing else about the name changed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_assets.mapping.normalize import BIDI_CONTROLS, normalize_name, strip_bidi_controls
from integration_assets_tests.testing.normalizers import FAST

RLO, PDF, LRI, PDI, RLM = "\u202e", "\u202c", "\u2066", "\u2069", "\u200f"


def test_the_controls_are_exactly_the_bidi_embeddings_overrides_isolates_and_marks() -> None:
    expected = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F]}
    assert expected == BIDI_CONTROLS


@pytest.mark.parametrize(
    ("raw", "name", "removed"),
    [
        (f"Acme {RLO}gpj.exe{PDF}", "Acme gpj.exe", 2),  # displays as "Acme exe.jpg" with the override
        (f"{RLM}  Globex  ", "Globex", 1),
        (f"{LRI}שלום{PDI} Ltd", "שלום Ltd", 2),  # right-to-left letters themselves are kept
        ("Zoë O'Brien-Smith", "Zoë O'Brien-Smith", 0),
        ("\u200d👩\u200d💻 Team", "\u200d👩\u200d💻 Team", 0),  # a zero-width joiner is not a bidi control
    ],
)
def test_bidi_controls_are_stripped_and_counted(raw: str, name: str, removed: int) -> None:
    assert normalize_name(raw) == name
    assert strip_bidi_controls(raw)[1] == removed


@pytest.mark.parametrize("raw", ["", "   ", RLO + PDF, f" {RLM} "])
def test_a_name_of_nothing_but_controls_and_spaces_is_empty(raw: str) -> None:
    assert normalize_name(raw) is None


@FAST
@given(st.text())
def test_no_bidi_control_survives_and_nothing_else_is_lost(raw: str) -> None:
    cleaned, removed = strip_bidi_controls(raw)
    assert not BIDI_CONTROLS & set(cleaned)
    assert removed == sum(c in BIDI_CONTROLS for c in raw)
    assert cleaned == "".join(c for c in raw if c not in BIDI_CONTROLS)
    assert normalize_name(raw) == (cleaned.strip() or None)


def test_a_customer_name_reaches_the_canonical_layer_without_bidi_controls() -> None:
    """A right-to-left override in a HubSpot company's name must not make `canonical.customers.name` display
    as something it is not: the dictionary's text fields are read without bidi controls."""
    from integration_assets.canonical.validate import read_record
    from integration_assets.mapping.dictionary import load_dictionary

    payload = {"id": "1", "properties": {"name": "Acme \u202egnp.exe\u202c Ltd", "domain": "acme.test"}}
    read = read_record(load_dictionary(), "customers", "crm", "companies", payload)
    assert read.values["name"].value == "Acme gnp.exe Ltd"
