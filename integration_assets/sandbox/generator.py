"""A deterministic fake business across HubSpot, Stripe and Zendesk, written as each vendor's API returns it.

`generate(out_dir, seed=, scale=, defect_rate=)` writes nine JSON arrays and `manifest.json` (see
/work/shared/design.md). `scale` is the number of CRM companies; each company and everything linked to it
(contacts, deals, a Stripe customer with invoices and charges, a Zendesk organization with users and
tickets) is one *family*. Families are generated one at a time, each from its own `random.Random` seeded by
(seed, family index), and streamed straight into the open files, so memory does not grow with scale and a
clean family's content does not depend on the defects planted elsewhere.

The business rules a consumer may rely on:

* Every record not listed in `manifest["defects"]` is clean: valid emails and `+`-prefixed phone numbers
  (fictional ranges: Ofcom drama numbers, NANP 555-01xx, ACMA and ARCEP fiction ranges), real dates, known
  statuses and currencies, and consistent links across systems.
* Stripe customers carry `metadata.hubspot_company_id`; invoices carry `metadata.hubspot_deal_id`, exist for
  every closed-won deal, and total the deal amount in minor units of the deal currency (JPY zero-decimal).
  Paid invoices are covered exactly by their charges; an open invoice may have one partial charge.
* Zendesk organizations carry `external_id` = HubSpot company id and end-users `external_id` = HubSpot
  contact id. An organization's `organization_fields.plan` is `implied_plan(n)` of the number `n` of the
  company's closed-won deals, and a clean organization's `updated_at` is earlier than its company's
  `hs_lastmodifieddate` (the CRM is the newer side), so a write-back may update it.
* All timestamps fall within ~400 days before `ANCHOR`, except expected close dates of open deals, which may
  lie up to 90 days after it.
"""

from __future__ import annotations

import calendar
import json
import os
import random
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["ANCHOR", "DEFECT_KINDS", "PLANS", "generate", "implied_plan"]

ANCHOR = "2026-10-01T00:00:00Z"
_ANCHOR_S = calendar.timegm((2026, 10, 1, 0, 0, 0))
_DAY = 86_400

# kind -> (system role, vendor object type, expected outcome); the order is the planting cycle.
DEFECT_KINDS: dict[str, tuple[str, str, str]] = {
    "missing_required_field": ("crm", "contacts", "review"),
    "invalid_email": ("crm", "contacts", "review"),
    "unparseable_phone": ("crm", "contacts", "review"),
    "invalid_date": ("crm", "deals", "review"),
    "negative_amount": ("crm", "deals", "review"),
    "unknown_status_label": ("crm", "deals", "review"),
    "unknown_currency": ("billing", "invoices", "review"),
    "duplicate_record": ("crm", "companies", "review"),
    "ambiguous_owner": ("billing", "customers", "review"),
    "won_deal_without_invoice": ("crm", "deals", "reconciliation"),
    "invoice_amount_mismatch": ("billing", "invoices", "reconciliation"),
    "charge_for_missing_invoice": ("billing", "charges", "reconciliation"),
    "paid_invoice_short": ("billing", "invoices", "reconciliation"),
    "unknown_requester": ("support", "tickets", "reconciliation"),
    "target_newer_than_source": ("support", "organizations", "conflict"),
}
_KINDS = tuple(DEFECT_KINDS)

PLANS = ("starter", "professional", "enterprise")


def implied_plan(closed_won_deals: int) -> str:
    """The Zendesk organization plan the CRM implies: by the company's number of closed-won deals."""
    return PLANS[min(max(closed_won_deals, 0), len(PLANS) - 1)]


FILES = (  # the dataset's files, vendor/object_type
    "hubspot/companies",
    "hubspot/contacts",
    "hubspot/deals",
    "stripe/customers",
    "stripe/invoices",
    "stripe/charges",
    "zendesk/organizations",
    "zendesk/users",
    "zendesk/tickets",
)

_CONTACT_DEFECTS = frozenset({"missing_required_field", "invalid_email", "unparseable_phone"})
_DEAL_DEFECTS = frozenset({"invalid_date", "negative_amount", "unknown_status_label"})
_INVOICE_DEFECTS = frozenset({"unknown_currency", "invoice_amount_mismatch", "paid_invoice_short"})
_NEEDS_WON = _INVOICE_DEFECTS | {"won_deal_without_invoice"}
_NEEDS_ORG = frozenset({"unknown_requester", "target_newer_than_source"})

# ---------------------------------------------------------------------------------------------- vocabulary


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORD_A = _words(
    "Amber Apex Arbor Aspen Atlas Aurora Beacon Birch Blue Bold Bright Cedar Cobalt Copper Coral "
    "Crest Crimson Crystal Delta Eagle Echo Ember Emerald Evergreen Falcon Fern Flint Forge Fox "
    "Frost Galaxy Garnet Glacier Golden Granite Harbor Hawk Hazel Horizon Indigo Iron Ivory Jade "
    "Juniper Keystone Lake Lantern Laurel Linden Lunar Maple Marble Meadow Mercury Midnight Nimbus "
    "Noble North Oak Ocean Onyx Orchid Pacific Peak Pine Pioneer Polar Prairie Quartz Quill Raven "
    "Redwood Ridge River Rocky Ruby Sable Sage Sapphire Silver Sky Slate Solar Spruce Stellar Stone "
    "Summit Swift Timber Topaz Trident True Valley Vertex Violet Willow Winter Zenith"
)
_WORD_B = _words(
    "Arc Bay Bend Bridge Brook Canyon Cliff Cove Creek Crown Dale Field Fjord Ford Gate Glen Grove "
    "Haven Heights Hill Hollow Island Key Knoll Land Light Line Marsh Mesa Mill Moor Mount Park Pass "
    "Path Point Pond Port Rock Shore Spring Star Stream Vale View Wave Way Wood Works Yard"
)
_WORD_C = _words(
    "Analytics Capital Consulting Design Dynamics Energy Engineering Foods Freight Games Health "
    "Insurance Interactive Labs Logic Logistics Manufacturing Media Networks Outfitters Pharma "
    "Realty Robotics Software Solutions Studios Supply Systems Textiles Travel Ventures"
)
_SUFFIXES = ("Ltd", "Inc", "LLC", "GmbH", "Group", "Co", "PLC", "SA")
_REGIONS = ("Europe", "Americas", "Asia Pacific", "International", "Services", "Holdings")
_NAME_SPACE = len(_WORD_A) * len(_WORD_B) * len(_WORD_C)
INDUSTRIES = (  # HubSpot's own industry values
    "COMPUTER_SOFTWARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "FINANCIAL_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "CONSTRUCTION",
    "EDUCATION_MANAGEMENT",
    "FOOD_BEVERAGES",
    "MANAGEMENT_CONSULTING",
    "RENEWABLES_ENVIRONMENT",
)
_FIRST = _words(
    "Aisha Alex Amelia Ana Ben Carlos Chloe Daniel David Elena Emma Ethan Fatima Grace Hannah Hiro "
    "Isabel Jack James Jane John Julia Kai Kenji Laura Leo Liam Lucas Maria Mark Maya Mei Mia "
    "Michael Nadia Noah Olivia Omar Paul Priya Rachel Ravi Rosa Ryan Sam Sara Sofia Tom Uma Victor "
    "Wei Yusuf Zara Zoe"
)
_LAST = _words(
    "Adams Ahmed Baker Brown Chen Clark Cohen Costa Davies Diaz Evans Fischer Garcia Green Hall "
    "Harris Hughes Ito Jackson Johnson Jones Kim Kowalski Lee Lewis Lopez Martin Meyer Miller Moore "
    "Muller Nakamura Nguyen Novak Patel Perez Price Reed Rossi Sato Schmidt Scott Silva Singh Smith "
    "Taylor Thomas Turner Walker Wang White Wilson Wright Young"
)
_AGENT_FIRST = _words("Alice Bruno Cara Dev Eva Felix Gina Hugo Ines Jonas Kira Luis Mona Nils Orla Pia Quinn Rui")
_AGENT_LAST = _words("Abbott Berg Castro Dunn Eriksen Ford Gray Holt Ibsen Jensen Kerr Lund Marsh Nash Ortiz Park")
_ACCOUNT_OWNERS = (
    "Hannah Okafor",
    "Marcus Lindqvist",
    "Priya Raman",
    "Tom Fletcher",
    "Yuki Tanaka",
    "Sofia Marino",
)
_PRODUCTS = (
    "Annual licence",
    "Platform subscription",
    "Onboarding package",
    "Enterprise plan",
    "Support renewal",
    "Expansion seats",
    "Data migration",
    "Pilot project",
    "Training workshop",
    "Premium add-on",
)
_TICKET_SUBJECTS = (
    "Cannot log in to the dashboard",
    "Invoice shows the wrong address",
    "Export to CSV times out",
    "Request to add {n} more seats",
    "Question about our {p}",
    "Password reset email never arrives",
    "API returns 500 on large uploads",
    "How do we change the billing contact?",
    "Report numbers differ from last week",
    "Feature request: dark mode",
    "Integration sync stopped overnight",
    "Please cancel the duplicate charge",
    "SSO setup for our team",
    "Slow page loads since the last update",
)
_TICKET_TYPES = ("problem", "incident", "question", "task")
_PRIORITIES = ("urgent", "high", "normal", "normal", "low")
_TICKET_STATUSES = ("new", "open", "open", "pending", "hold", "solved", "solved", "closed", "closed")
_OPEN_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)
_LIFECYCLE_PROSPECT = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead")
_LIFECYCLE_OPEN = ("salesqualifiedlead", "opportunity", "opportunity")
_LIFECYCLE_CUSTOMER = ("customer", "customer", "customer", "evangelist")
_EMAIL_PATTERNS = ("{f}.{l}", "{f}.{l}", "{f}", "{f}_{l}")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# City and a phone template in a range reserved for fiction that `phonenumbers` validates; each `d` is a
# random digit.
_CITIES = (
    ("London", "+44 20 7946 0ddd"),
    ("Manchester", "+44 161 496 0ddd"),
    ("Birmingham", "+44 121 496 0ddd"),
    ("Bristol", "+44 117 496 0ddd"),
    ("Leeds", "+44 113 496 0ddd"),
    ("Edinburgh", "+44 131 496 0ddd"),
    ("New York", "+1 212 555 01dd"),
    ("San Francisco", "+1 415 555 01dd"),
    ("Chicago", "+1 312 555 01dd"),
    ("Boston", "+1 617 555 01dd"),
    ("Austin", "+1 512 555 01dd"),
    ("Seattle", "+1 206 555 01dd"),
    ("Denver", "+1 303 555 01dd"),
    ("Sydney", "+61 2 5550 dddd"),
    ("Melbourne", "+61 3 7010 dddd"),
    ("Brisbane", "+61 7 5550 dddd"),
    ("Paris", "+33 1 99 00 dd dd"),
    ("Lyon", "+33 4 99 00 dd dd"),
)
_PHONE_FORMATS = tuple((city, tpl.replace("d", "{}"), tpl.count("d")) for city, tpl in _CITIES)

_CURRENCIES = (("USD", 0.45), ("EUR", 0.65), ("GBP", 0.90), ("JPY", 1.0))  # cumulative weights
_BAD_PHONES = ("call me maybe", "12", "+44", "ask reception")
_MIX = 0x9E3779B1  # odd and not a multiple of 3: a bijection modulo 36**8


def _iso_ms(ms: int) -> str:
    """HubSpot timestamp: 2026-03-04T05:06:07.123Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _iso_s(seconds: int) -> str:
    """Zendesk timestamp: 2026-03-04T05:06:07Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _decimal(minor: int, currency: str) -> str:
    """HubSpot amount string: 12500.00, or 150000 for zero-decimal JPY."""
    if currency == "JPY":
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def _major(minor: int, currency: str) -> int | float:
    return minor if currency == "JPY" else round(minor / 100, 2)


class _ArrayWriter:
    """Streams records into a JSON array: `[`, records separated by `,\\n`, `]`."""

    __slots__ = ("_file", "_sep", "count")

    def __init__(self, path: Path) -> None:
        self._file: TextIO = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)  # noqa: SIM115
        self._file.write("[")
        self._sep = ""
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self._file.write(self._sep + json.dumps(record, separators=(",", ":")))
        self._sep = ",\n"
        self.count += 1

    def close(self) -> None:
        self._file.write("]\n")
        self._file.close()


def _defect_count(scale: int, rate: float) -> int:
    if rate <= 0:
        return 0
    n = round(rate * scale)
    kinds = len(_KINDS)
    n = max(n, kinds) if scale >= 2 * kinds else max(n, min(kinds, scale // 2))
    return min(n, scale)


class _Generator:
    def __init__(self, out: Path, seed: int, scale: int, defect_rate: float) -> None:
        self.out, self.seed, self.scale, self.defect_rate = out, seed, scale, defect_rate
        self.seed_key = (seed & 0xFFFF_FFFF_FFFF_FFFF) << 40
        setup = random.Random(f"integration-assets/{seed}/setup")
        self.name_offset = setup.randrange(_NAME_SPACE)
        self.prefix_offset = setup.randrange(36**8)
        self.n_defects = _defect_count(scale, defect_rate)
        self.placement = random.Random(f"integration-assets/{seed}/defects")
        self.next_company = 10_000_001
        self.next_contact = 20_000_001
        self.next_deal = 30_000_001
        self.next_customer = 0
        self.next_org = 360_000_001
        self.next_user = 370_000_001
        self.next_ticket = 1
        self.archived = 0
        self.defects: list[dict[str, Any]] = []
        self.agents: list[int] = []
        self.w: dict[str, _ArrayWriter] = {}

    # ------------------------------------------------------------------------------------------- driver

    def run(self) -> dict[str, Any]:
        for system in ("hubspot", "stripe", "zendesk"):
            (self.out / system).mkdir(parents=True, exist_ok=True)
        manifest_path = self.out / "manifest.json"
        if manifest_path.exists():  # a crash must not leave an old manifest beside new data
            manifest_path.unlink()
        try:
            for name in FILES:
                self.w[name] = _ArrayWriter(self.out / f"{name}.json")
            self._agents()
            defect_index, defect_family = 0, self._defect_family(0)
            for family in range(self.scale):
                kind, occurrence = None, 0
                if family == defect_family:
                    kind, occurrence = _KINDS[defect_index % len(_KINDS)], defect_index // len(_KINDS)
                    defect_index += 1
                    defect_family = self._defect_family(defect_index)
                self._family(family, kind, occurrence)
        finally:
            for writer in self.w.values():
                writer.close()
        manifest = {
            "seed": self.seed,
            "scale": self.scale,
            "defect_rate": float(self.defect_rate),
            "anchor": ANCHOR,
            "counts": {name: self.w[name].count for name in FILES},
            "archived": {"hubspot/contacts": self.archived},
            "defects": self.defects,
        }
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, manifest_path)
        return manifest

    def _defect_family(self, j: int) -> int:
        """Family of the j-th defect: one random family in the j-th of n equal strides (-1: none left)."""
        n = self.n_defects
        if j >= n:
            return -1
        lo = -(-j * self.scale // n)
        hi = -(-(j + 1) * self.scale // n) - 1
        return self.placement.randint(lo, hi)

    def _defect(self, kind: str, record_id: str | int, detail: str) -> None:
        system, object_type, expected = DEFECT_KINDS[kind]
        self.defects.append(
            {
                "kind": kind,
                "system": system,
                "object_type": object_type,
                "id": record_id,
                "expected": expected,
                "detail": detail,
            }
        )

    # ------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def _phone(r: random.Random, fmt: str, digits: int) -> str:
        number = fmt.format(*f"{r.randrange(10**digits):0{digits}d}")
        return number.replace(" ", "") if r.random() < 0.3 else number

    @staticmethod
    def _stripe_id(r: random.Random, prefix: str) -> str:
        return prefix + "".join(r.choices(_ALNUM, k=14))

    def _invoice_prefix(self) -> str:
        value = (self.next_customer * _MIX + self.prefix_offset) % 36**8
        self.next_customer += 1
        out = []
        for _ in range(8):
            value, digit = divmod(value, 36)
            out.append(_ALNUM[digit])
        return "".join(reversed(out))

    def _identity(self, family: int) -> tuple[str, str, str]:
        """(name without legal suffix, legal suffix, domain): unique per family index."""
        cycle, index = divmod(family, _NAME_SPACE)
        k = (index * 7_919 + self.name_offset) % _NAME_SPACE
        k, c = divmod(k, len(_WORD_C))
        a, b = divmod(k, len(_WORD_B))
        words = [_WORD_A[a], _WORD_B[b], _WORD_C[c]]
        if cycle:
            words.append(str(cycle + 1))
        base = " ".join(words)
        return base, _SUFFIXES[(a + b + c) % len(_SUFFIXES)], "-".join(words).lower() + ".example"

    def _company(
        self, r: random.Random, name: str, domain: str, phone: str, city: str, created: int, modified: int
    ) -> str:
        cid = str(self.next_company)
        self.next_company += 1
        created_iso = _iso_ms(created * 1000 + r.randrange(1000))
        modified_iso = _iso_ms(modified * 1000 + r.randrange(1000))
        self.w["hubspot/companies"].add(
            {
                "id": cid,
                "properties": {
                    "name": name,
                    "domain": domain,
                    "phone": phone,
                    "city": city,
                    "industry": r.choice(INDUSTRIES),
                    "createdate": created_iso,
                    "hs_lastmodifieddate": modified_iso,
                    "hs_object_id": cid,
                },
                "createdAt": created_iso,
                "updatedAt": modified_iso,
                "archived": False,
            }
        )
        return cid

    def _agents(self) -> None:
        r = random.Random(f"integration-assets/{self.seed}/agents")
        count = min(20, max(1, self.scale // 50))
        names = r.sample([(f, la) for f in _AGENT_FIRST for la in _AGENT_LAST], count)
        for first, last in names:
            created = _ANCHOR_S - r.randint(380 * _DAY, 400 * _DAY)
            updated = r.randint(created, _ANCHOR_S - 3600)
            _, fmt, digits = _PHONE_FORMATS[r.randrange(6)]
            self.agents.append(
                self._user(
                    f"{first} {last}",
                    f"{first}.{last}@sandbox-support.test".lower(),
                    self._phone(r, fmt, digits),
                    "agent",
                    None,
                    None,
                    created,
                    updated,
                )
            )

    def _user(
        self,
        name: str,
        email: str,
        phone: str,
        role: str,
        external_id: str | None,
        org_id: int | None,
        created: int,
        updated: int,
    ) -> int:
        uid = self.next_user
        self.next_user += 1
        self.w["zendesk/users"].add(
            {
                "id": uid,
                "url": f"https://sandbox.zendesk.com/api/v2/users/{uid}.json",
                "name": name,
                "email": email,
                "phone": phone,
                "role": role,
                "external_id": external_id,
                "organization_id": org_id,
                "active": True,
                "verified": True,
                "suspended": False,
                "time_zone": "UTC",
                "locale": "en-US",
                "tags": [],
                "user_fields": {},
                "created_at": _iso_s(created),
                "updated_at": _iso_s(updated),
            }
        )
        return uid

    # ------------------------------------------------------------------------------------------- family

    def _family(self, family: int, kind: str | None, occurrence: int) -> None:
        r = random.Random(self.seed_key | family)
        anchor = _ANCHOR_S
        base, suffix, domain = self._identity(family)
        name = f"{base} {suffix}"
        city, fmt, digits = r.choice(_PHONE_FORMATS)
        x = r.random()
        currency = next(code for code, cumulative in _CURRENCIES if x < cumulative)
        created = anchor - r.randint(60 * _DAY, 400 * _DAY)
        modified = r.randint(created + _DAY, anchor - _DAY)

        # -- deal stages first: contacts' lifecycle stages follow from them
        stages = [self._stage(r) for _ in range(2 if r.random() < 0.6 else 1)]
        if kind in _NEEDS_WON:
            stages[0] = "closedwon"
        if kind in _DEAL_DEFECTS:
            stages[-1] = "closed_maybe" if kind == "unknown_status_label" else r.choice(_OPEN_STAGES)
        won = stages.count("closedwon")

        # -- companies
        company_phone = self._phone(r, fmt, digits)
        company_id = self._company(r, name, domain, company_phone, city, created, modified)
        if kind == "duplicate_record":
            copy_created = r.randint(created + _DAY, modified)
            copy_id = self._company(r, name, domain, company_phone, city, copy_created, modified)
            detail = f"Companies {company_id} and {copy_id} share the name {name!r} and the domain {domain}."
            self._defect(kind, company_id, detail)
            self._defect(kind, copy_id, detail)
        sibling_id = None
        if kind == "ambiguous_owner":
            s_city, s_fmt, s_digits = r.choice(_PHONE_FORMATS)
            sibling_id = self._company(
                r,
                f"{base} {r.choice(_REGIONS)} {suffix}",
                domain,
                self._phone(r, s_fmt, s_digits),
                s_city,
                r.randint(created, modified),
                modified,
            )

        # -- contacts
        n_contacts = r.choice((1, 2, 2, 3, 3, 3))
        if kind in _CONTACT_DEFECTS:
            n_contacts = max(2, n_contacts)
        firsts = r.sample(_FIRST, n_contacts)
        pattern = r.choice(_EMAIL_PATTERNS)
        lifecycle = (
            _LIFECYCLE_CUSTOMER
            if won
            else (_LIFECYCLE_OPEN if set(stages) & set(_OPEN_STAGES) else _LIFECYCLE_PROSPECT)
        )
        bad_contact = n_contacts - 1 if kind in _CONTACT_DEFECTS else -1
        # (id, full name, email, phone, created) of clean, live contacts: the ones other systems know
        live: list[tuple[str, str, str, str, int]] = []
        for j, first in enumerate(firsts):
            last = r.choice(_LAST)
            contact_id = str(self.next_contact)
            self.next_contact += 1
            email: str | None = pattern.format(f=first, l=last).lower() + "@" + domain
            phone = self._phone(r, fmt, digits)
            c_created = r.randint(created, created + (anchor - created) // 2)
            c_modified = r.randint(c_created, anchor - 3600)
            archived_at = None
            if j == bad_contact:
                email, phone = self._bad_contact(r, kind, occurrence, contact_id, email, phone, domain)
            elif j > 0 and r.random() < 0.02:
                archived_at = c_modified = r.randint(c_modified, anchor - 60)
                self.archived += 1
            else:
                live.append((contact_id, f"{first} {last}", email, phone, c_created))
            created_iso = _iso_ms(c_created * 1000 + r.randrange(1000))
            modified_iso = _iso_ms(c_modified * 1000 + r.randrange(1000))
            record: dict[str, Any] = {
                "id": contact_id,
                "properties": {
                    "email": email,
                    "firstname": first,
                    "lastname": last,
                    "phone": phone,
                    "lifecyclestage": r.choice(lifecycle),
                    "createdate": created_iso,
                    "lastmodifieddate": modified_iso,
                    "hs_object_id": contact_id,
                    "associatedcompanyid": company_id,
                },
                "createdAt": created_iso,
                "updatedAt": modified_iso,
                "archived": archived_at is not None,
            }
            if archived_at is not None:
                record["archivedAt"] = modified_iso
            self.w["hubspot/contacts"].add(record)

        # -- deals: (id, stage, amount in minor units, closedate in seconds)
        deals: list[tuple[str, str, int, int]] = []
        for j, stage in enumerate(stages):
            deal_id = str(self.next_deal)
            self.next_deal += 1
            if currency == "JPY":
                minor = r.randint(10, 2000) * 1000
            else:
                minor = r.randint(5, 400) * 25_000
                if r.random() < 0.15:
                    minor -= 1
            d_created = r.randint(created, anchor - 30 * _DAY)
            if stage in ("closedwon", "closedlost"):
                close = r.randint(d_created + _DAY, min(d_created + 120 * _DAY, anchor - 7 * _DAY))
                d_modified = r.randint(close, anchor - 3600)
            else:
                close = r.randint(d_created + 14 * _DAY, anchor + 90 * _DAY)
                d_modified = r.randint(d_created, anchor - 3600)
            amount = _decimal(minor, currency)
            closedate = _iso_ms(close * 1000)
            if j == len(stages) - 1 and kind in _DEAL_DEFECTS:
                if kind == "invalid_date":
                    year = time.gmtime(close).tm_year
                    closedate = (f"{year}-02-30", f"{year}-13-01", f"{year}-04-31")[occurrence % 3]
                    closedate += "T00:00:00.000Z"
                    self._defect(kind, deal_id, f"Deal closedate {closedate!r} is not a calendar date.")
                elif kind == "negative_amount":
                    amount = _decimal(-minor, currency)
                    self._defect(kind, deal_id, f"Deal amount {amount} {currency} is negative.")
                else:
                    self._defect(kind, deal_id, "Deal stage 'closed_maybe' is not a stage of the default pipeline.")
            created_iso = _iso_ms(d_created * 1000 + r.randrange(1000))
            modified_iso = _iso_ms(d_modified * 1000 + r.randrange(1000))
            self.w["hubspot/deals"].add(
                {
                    "id": deal_id,
                    "properties": {
                        "dealname": f"{base} - {r.choice(_PRODUCTS)}",
                        "amount": amount,
                        "deal_currency_code": currency,
                        "closedate": closedate,
                        "pipeline": "default",
                        "dealstage": stage,
                        "createdate": created_iso,
                        "hs_lastmodifieddate": modified_iso,
                        "hs_object_id": deal_id,
                    },
                    "createdAt": created_iso,
                    "updatedAt": modified_iso,
                    "archived": False,
                    "associations": {
                        "companies": {"results": [{"id": company_id, "type": "deal_to_company"}]},
                        "contacts": {"results": [{"id": r.choice(live)[0], "type": "deal_to_contact"}]},
                    },
                }
            )
            deals.append((deal_id, stage, minor, close))

        # -- Stripe
        x = r.random()
        if won or x < 0.10 or kind == "charge_for_missing_invoice":
            self._billing(r, kind, occurrence, company_id, name, currency, created, live[0], deals)
        if kind == "ambiguous_owner":
            customer_id = self._stripe_id(r, "cus_")
            email = f"accounts.payable@{domain}"
            self.w["stripe/customers"].add(
                self._customer(
                    customer_id,
                    r.randint(created, anchor - _DAY),
                    email,
                    None,
                    None,
                    currency,
                    {},
                    self._invoice_prefix(),
                )
            )
            self._defect(
                kind,
                customer_id,
                f"Customer {email} has no hubspot_company_id and its domain {domain} belongs to companies "
                f"{company_id} and {sibling_id}.",
            )

        # -- Zendesk
        x = r.random()
        if x < 0.70 or kind in _NEEDS_ORG:
            self._support(
                r,
                kind,
                company_id,
                name,
                domain,
                created,
                modified,
                won,
                deals,
                currency,
                live,
                firsts,
                pattern,
                fmt,
                digits,
            )

    @staticmethod
    def _stage(r: random.Random) -> str:
        x = r.random()
        if x < 0.40:
            return "closedwon"
        if x < 0.55:
            return "closedlost"
        return _OPEN_STAGES[min(int((x - 0.55) / 0.09), 4)]

    def _bad_contact(
        self,
        r: random.Random,
        kind: str,
        occurrence: int,
        contact_id: str,
        email: str,
        phone: str,
        domain: str,
    ) -> tuple[str | None, str]:
        local = email.split("@", 1)[0]
        if kind == "missing_required_field":
            self._defect(kind, contact_id, "Contact has no email (required field is null).")
            return None, phone
        if kind == "invalid_email":
            stem = domain.rsplit(".", 1)[0]
            email = (f"{local}@@{stem}", f"{local}.{domain}", f"{local}@")[occurrence % 3]
            self._defect(kind, contact_id, f"Contact email {email!r} is not a valid address.")
            return email, phone
        phone = _BAD_PHONES[occurrence % len(_BAD_PHONES)]
        self._defect(kind, contact_id, f"Contact phone {phone!r} is not a phone number.")
        return email, phone

    @staticmethod
    def _customer(
        customer_id: str,
        created: int,
        email: str,
        name: str | None,
        phone: str | None,
        currency: str,
        metadata: dict[str, str],
        prefix: str,
    ) -> dict[str, Any]:
        return {
            "id": customer_id,
            "object": "customer",
            "created": created,
            "email": email,
            "name": name,
            "phone": phone,
            "description": None,
            "currency": currency.lower(),
            "metadata": metadata,
            "livemode": False,
            "delinquent": False,
            "balance": 0,
            "address": None,
            "invoice_prefix": prefix,
        }

    def _billing(
        self,
        r: random.Random,
        kind: str | None,
        occurrence: int,
        company_id: str,
        name: str,
        currency: str,
        created: int,
        contact: tuple[str, str, str, str, int],
        deals: list[tuple[str, str, int, int]],
    ) -> None:
        anchor = _ANCHOR_S
        customer_id = self._stripe_id(r, "cus_")
        prefix = self._invoice_prefix()
        email = contact[2]
        self.w["stripe/customers"].add(
            self._customer(
                customer_id,
                created + r.randint(60, 12 * 3600),
                email,
                name,
                contact[3],
                currency,
                {"hubspot_company_id": company_id},
                prefix,
            )
        )
        billing_details = {"email": email, "name": name, "phone": None, "address": None}
        number = 0
        target = True  # the first closed-won deal carries an invoice defect (always deals[0] then)
        for deal_id, stage, minor, close in deals:
            if stage != "closedwon":
                continue
            this_kind = kind if target else None
            target = False
            if this_kind == "won_deal_without_invoice":
                self._defect(
                    this_kind,
                    deal_id,
                    f"Deal {deal_id} is closed-won for {_decimal(minor, currency)} {currency} but has no invoice.",
                )
                continue
            invoice_id = self._stripe_id(r, "in_")
            number += 1
            inv_created = close + r.randint(3600, 3 * _DAY)
            finalized = inv_created + r.randint(60, 3600)
            x = r.random()
            status = "paid" if x < 0.70 else "open" if x < 0.95 else "void" if x < 0.98 else "uncollectible"
            total, inv_currency = minor, currency.lower()
            if this_kind in ("invoice_amount_mismatch", "paid_invoice_short"):
                status = "paid"
            elif this_kind == "unknown_currency":
                status, inv_currency = "open", "xyz"
                self._defect(
                    this_kind,
                    invoice_id,
                    f"Invoice currency 'xyz' is not an ISO-4217 code (deal {deal_id} is in {currency}).",
                )
            if this_kind == "invoice_amount_mismatch":
                if occurrence % 2 == 0:
                    step = 1000 if currency == "JPY" else 100
                    delta = max(step, minor * r.randint(5, 20) // 100 // step * step)
                    total = minor + delta if r.random() < 0.5 else max(step, minor - delta)
                    detail = (
                        f"Invoice total {total} {inv_currency} differs from deal {deal_id} amount "
                        f"{_decimal(minor, currency)} {currency} ({minor} in minor units)."
                    )
                else:
                    inv_currency = r.choice([c for c in ("usd", "eur", "gbp") if c != currency.lower()])
                    detail = (
                        f"Invoice is in {inv_currency.upper()} while deal {deal_id} is in {currency} "
                        f"(same figure {total})."
                    )
                self._defect(this_kind, invoice_id, detail)

            charges: list[int] = []
            if status == "paid":
                if this_kind == "paid_invoice_short":
                    charges = [total * r.randint(40, 90) // 100]
                    self._defect(
                        this_kind,
                        invoice_id,
                        f"Invoice is paid with amount_paid {total} {inv_currency} but its charges sum to {charges[0]}.",
                    )
                elif r.random() < 0.3:
                    first = total * r.randint(30, 70) // 100
                    charges = [first, total - first]
                else:
                    charges = [total]
            elif status == "open" and inv_currency != "xyz" and r.random() < 0.3:
                charges = [total * r.randint(10, 60) // 100]
            latest = min(finalized + 20 * _DAY, anchor - 60)
            times = sorted(r.randint(finalized + 60, latest) for _ in charges)
            amount_paid = total if status == "paid" else sum(charges)
            self.w["stripe/invoices"].add(
                {
                    "id": invoice_id,
                    "object": "invoice",
                    "customer": customer_id,
                    "status": status,
                    "currency": inv_currency,
                    "amount_due": total,
                    "amount_paid": amount_paid,
                    "amount_remaining": total - amount_paid,
                    "total": total,
                    "subtotal": total,
                    "created": inv_created,
                    "due_date": inv_created + 30 * _DAY,
                    "number": f"{prefix}-{number:04d}",
                    "collection_method": "send_invoice",
                    "metadata": {"hubspot_deal_id": deal_id},
                    "status_transitions": {
                        "finalized_at": finalized,
                        "paid_at": times[-1] if status == "paid" else None,
                        "voided_at": r.randint(finalized + _DAY, min(finalized + 60 * _DAY, anchor - 60))
                        if status == "void"
                        else None,
                        "marked_uncollectible_at": r.randint(min(inv_created + 30 * _DAY, anchor - 3600), anchor - 60)
                        if status == "uncollectible"
                        else None,
                    },
                    "livemode": False,
                    "attempted": amount_paid > 0,
                    "paid": status == "paid",
                }
            )
            for amount, at in zip(charges, times, strict=True):
                self._charge(r, amount, inv_currency, customer_id, invoice_id, at, billing_details)

        if kind == "charge_for_missing_invoice":
            missing = self._stripe_id(r, "in_")
            minor = r.randint(10, 2000) * 1000 if currency == "JPY" else r.randint(5, 400) * 25_000
            charge_id = self._charge(
                r,
                minor,
                currency.lower(),
                customer_id,
                missing,
                r.randint(created + _DAY, anchor - 60),
                billing_details,
            )
            self._defect(kind, charge_id, f"Charge pays invoice {missing}, which does not exist.")

    def _charge(
        self,
        r: random.Random,
        amount: int,
        currency: str,
        customer_id: str,
        invoice_id: str,
        created: int,
        billing_details: dict[str, Any],
    ) -> str:
        charge_id = self._stripe_id(r, "ch_")
        self.w["stripe/charges"].add(
            {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "currency": currency,
                "customer": customer_id,
                "invoice": invoice_id,
                "payment_intent": self._stripe_id(r, "pi_"),
                "status": "succeeded",
                "paid": True,
                "captured": True,
                "refunded": False,
                "created": created,
                "metadata": {},
                "billing_details": billing_details,
                "livemode": False,
            }
        )
        return charge_id

    def _support(
        self,
        r: random.Random,
        kind: str | None,
        company_id: str,
        name: str,
        domain: str,
        created: int,
        modified: int,
        won: int,
        deals: list[tuple[str, str, int, int]],
        currency: str,
        live: list[tuple[str, str, str, str, int]],
        firsts: list[str],
        pattern: str,
        fmt: str,
        digits: int,
    ) -> None:
        anchor = _ANCHOR_S
        org_id = self.next_org
        self.next_org += 1
        org_created = created + r.randint(0, min(10 * _DAY, (modified - created) // 4))
        org_updated = org_created + r.randint(0, (modified - org_created) // 2)
        plan = implied_plan(won)
        if kind == "target_newer_than_source":
            org_updated = modified + r.randint(3600, min(10 * _DAY, anchor - modified - 60))
            crm_plan = plan
            plan = r.choice([p for p in PLANS if p != crm_plan])
            self._defect(
                kind,
                org_id,
                f"Organization updated {_iso_s(org_updated)}, after company {company_id} was last modified "
                f"{_iso_s(modified)}; its plan {plan!r} differs from the CRM-implied {crm_plan!r}.",
            )
        lifetime = sum(minor for _, stage, minor, _ in deals if stage == "closedwon")
        self.w["zendesk/organizations"].add(
            {
                "id": org_id,
                "url": f"https://sandbox.zendesk.com/api/v2/organizations/{org_id}.json",
                "name": name,
                "domain_names": [domain],
                "external_id": company_id,
                "details": "",
                "notes": "",
                "group_id": None,
                "shared_tickets": False,
                "shared_comments": False,
                "tags": [],
                "organization_fields": {
                    "plan": plan,
                    "account_owner": r.choice(_ACCOUNT_OWNERS),
                    "lifetime_value": _major(lifetime, currency),
                },
                "created_at": _iso_s(org_created),
                "updated_at": _iso_s(org_updated),
            }
        )
        users: list[tuple[int, int]] = []  # (user id, created)
        for contact_id, full_name, email, phone, c_created in live:
            u_created = max(c_created, org_created) + r.randint(0, 2 * _DAY)
            u_updated = r.randint(u_created, anchor - 3600)
            uid = self._user(full_name, email, phone, "end-user", contact_id, org_id, u_created, u_updated)
            users.append((uid, u_created))
        tickets = r.choice((0, 1, 2, 2, 3, 3))
        for _ in range(tickets):
            self._ticket(r, r.choice(users), org_id, org_created)
        if kind == "unknown_requester":
            first = r.choice([f for f in _FIRST if f not in firsts])
            last = r.choice(_LAST)
            email = pattern.format(f=first, l=last).lower() + "@" + domain
            u_created = r.randint(org_created, anchor - 10 * _DAY)
            uid = self._user(
                f"{first} {last}",
                email,
                self._phone(r, fmt, digits),
                "end-user",
                None,
                org_id,
                u_created,
                r.randint(u_created, anchor - 3600),
            )
            ticket_id = self._ticket(r, (uid, u_created), org_id, org_created)
            self._defect(
                kind,
                ticket_id,
                f"Ticket requester {uid} ({email}) has no external_id and matches no CRM contact.",
            )

    def _ticket(self, r: random.Random, requester: tuple[int, int], org_id: int, org_created: int) -> int:
        anchor = _ANCHOR_S
        ticket_id = self.next_ticket
        self.next_ticket += 1
        uid, u_created = requester
        t_created = r.randint(max(u_created, org_created) + 3600, anchor - 7200)
        t_updated = r.randint(t_created, anchor - 60)
        status = r.choice(_TICKET_STATUSES)
        subject = r.choice(_TICKET_SUBJECTS).format(n=r.randint(2, 25), p=r.choice(_PRODUCTS).lower())
        self.w["zendesk/tickets"].add(
            {
                "id": ticket_id,
                "url": f"https://sandbox.zendesk.com/api/v2/tickets/{ticket_id}.json",
                "external_id": None,
                "type": r.choice(_TICKET_TYPES),
                "subject": subject,
                "raw_subject": subject,
                "description": f"Hello team,\n\n{subject}. Could you take a look?\n\nThanks",
                "priority": r.choice(_PRIORITIES),
                "status": status,
                "requester_id": uid,
                "submitter_id": uid,
                "assignee_id": None if status == "new" else r.choice(self.agents),
                "organization_id": org_id,
                "group_id": None,
                "tags": [],
                "custom_fields": [],
                "via": {"channel": "email"},
                "created_at": _iso_s(t_created),
                "updated_at": _iso_s(t_updated),
                "generated_timestamp": t_updated,
            }
        )
        return ticket_id


def generate(out_dir: str | Path, *, seed: int = 0, scale: int = 100, defect_rate: float = 0.0) -> dict:
    """Writes the dataset and manifest.json; returns the manifest dict.

    Same (seed, scale, defect_rate) gives byte-identical files. `scale` is the number of CRM companies
    (about 11 records each across the nine files); `defect_rate` the share of families given one planted
    defect (at least one of each kind of `DEFECT_KINDS` when the rate is positive and scale >= 30).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= defect_rate <= 1:
        raise ValueError(f"defect_rate must be between 0 and 1, got {defect_rate!r}")
    return _Generator(Path(out_dir), seed, scale, defect_rate).run()
