"""One family: a CRM company and everything linked to it in the three systems, drawn from one seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from integration_sandbox.generator.formats import ANCHOR_S, DAY
from integration_sandbox.generator.vocabulary import (
    CURRENCIES,
    NAME_SPACE,
    PHONE_FORMATS,
    SUFFIXES,
    WORD_A,
    WORD_B,
    WORD_C,
)

Contact = tuple[str, str, str, str, int]  # (id, full name, email, phone, created) of a clean, live contact
Deal = tuple[str, str, int, int, str]  # (id, stage, amount in minor units, closedate in seconds, product)


@dataclass
class Family:
    """What the family is (drawn first), then what its CRM records are: billing and support follow those."""

    index: int
    kind: str | None  # the defect planted in this family, if any
    occurrence: int  # how many defects of that kind were planted before
    base: str  # the company name without its legal suffix
    suffix: str
    domain: str
    city: str
    fmt: str  # the city's phone template
    digits: int
    currency: str
    created: int
    modified: int
    # set by the CRM builder
    stages: list[str] = field(default_factory=list)
    won: int = 0
    company_id: str = ""
    sibling_id: str | None = None  # ambiguous_owner: another company with the same domain
    firsts: list[str] = field(default_factory=list)  # the contacts' first names
    pattern: str = ""  # the company's email address pattern
    live: list[Contact] = field(default_factory=list)  # the contacts other systems know
    deals: list[Deal] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.base} {self.suffix}"

    @classmethod
    def draw(cls, r: random.Random, index: int, kind: str | None, occurrence: int, name_offset: int) -> Family:
        base, suffix, domain = identity(index, name_offset)
        city, fmt, digits = r.choice(PHONE_FORMATS)
        x = r.random()
        currency = next(code for code, cumulative in CURRENCIES if x < cumulative)
        created = ANCHOR_S - r.randint(60 * DAY, 400 * DAY)
        modified = r.randint(created + DAY, ANCHOR_S - DAY)
        return cls(index, kind, occurrence, base, suffix, domain, city, fmt, digits, currency, created, modified)


def identity(family: int, name_offset: int) -> tuple[str, str, str]:
    """(name without legal suffix, legal suffix, domain): unique per family index."""
    cycle, index = divmod(family, NAME_SPACE)
    k = (index * 7_919 + name_offset) % NAME_SPACE
    k, c = divmod(k, len(WORD_C))
    a, b = divmod(k, len(WORD_B))
    words = [WORD_A[a], WORD_B[b], WORD_C[c]]
    if cycle:
        words.append(str(cycle + 1))
    base = " ".join(words)
    return base, SUFFIXES[(a + b + c) % len(SUFFIXES)], "-".join(words).lower() + ".example"
