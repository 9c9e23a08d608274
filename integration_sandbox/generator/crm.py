"""HubSpot's side of the dataset: companies, contacts and deals, written as the CRM v3 API returns them."""

from __future__ import annotations

import random
import time
from typing import Any

from integration_sandbox.generator.defects import CONTACT_DEFECTS, DEAL_DEFECTS, NEEDS_WON, DefectPlanter
from integration_sandbox.generator.family import Deal, Family
from integration_sandbox.generator.formats import ANCHOR_S, DAY, ArrayWriter, decimal, iso_ms, phone_number
from integration_sandbox.generator.vocabulary import (
    EMAIL_PATTERNS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    LIFECYCLE_CUSTOMER,
    LIFECYCLE_OPEN,
    LIFECYCLE_PROSPECT,
    OPEN_STAGES,
    PHONE_FORMATS,
    PRODUCTS,
    REGIONS,
)


class Crm:
    """Writes the HubSpot files, numbering companies, contacts and deals in their own id ranges."""

    def __init__(self, writers: dict[str, ArrayWriter], planter: DefectPlanter) -> None:
        self.w, self.planter = writers, planter
        self.next_company = 10_000_001
        self.next_contact = 20_000_001
        self.next_deal = 30_000_001
        self.archived = 0

    def build(self, r: random.Random, family: Family) -> None:
        """Draws the deal stages first (contacts' lifecycle stages follow from them), then writes the records."""
        family.stages = self._stages(r, family.kind)
        family.won = family.stages.count("closedwon")
        self._companies(r, family)
        self._contacts(r, family)
        self._deals(r, family)

    def _stages(self, r: random.Random, kind: str | None) -> list[str]:
        stages = [self.stage(r) for _ in range(2 if r.random() < 0.6 else 1)]
        if kind in NEEDS_WON:
            stages[0] = "closedwon"
        if kind in DEAL_DEFECTS:
            stages[-1] = "closed_maybe" if kind == "unknown_status_label" else r.choice(OPEN_STAGES)
        return stages

    def _companies(self, r: random.Random, family: Family) -> None:
        kind, base, suffix, name, domain = family.kind, family.base, family.suffix, family.name, family.domain
        city, fmt, digits, created, modified = family.city, family.fmt, family.digits, family.created, family.modified
        company_phone = phone_number(r, fmt, digits)
        company_id = self.company(r, name, domain, company_phone, city, created, modified)
        if kind == "duplicate_record":
            copy_created = r.randint(created + DAY, modified)
            copy_id = self.company(r, name, domain, company_phone, city, copy_created, modified)
            detail = f"Companies {company_id} and {copy_id} share the name {name!r} and the domain {domain}."
            self.planter.add(kind, company_id, detail)
            self.planter.add(kind, copy_id, detail)
        sibling_id = None
        if kind == "ambiguous_owner":
            s_city, s_fmt, s_digits = r.choice(PHONE_FORMATS)
            sibling_id = self.company(
                r,
                f"{base} {r.choice(REGIONS)} {suffix}",
                domain,
                phone_number(r, s_fmt, s_digits),
                s_city,
                r.randint(created, modified),
                modified,
            )
        family.company_id, family.sibling_id = company_id, sibling_id

    def _contacts(self, r: random.Random, family: Family) -> None:
        kind, occurrence, domain, company_id = family.kind, family.occurrence, family.domain, family.company_id
        stages, won, fmt, digits, created = family.stages, family.won, family.fmt, family.digits, family.created
        anchor = ANCHOR_S
        n_contacts = r.choice((1, 2, 2, 3, 3, 3))
        if kind in CONTACT_DEFECTS:
            n_contacts = max(2, n_contacts)
        firsts = r.sample(FIRST_NAMES, n_contacts)
        pattern = r.choice(EMAIL_PATTERNS)
        lifecycle = (
            LIFECYCLE_CUSTOMER if won else (LIFECYCLE_OPEN if set(stages) & set(OPEN_STAGES) else LIFECYCLE_PROSPECT)
        )
        bad_contact = n_contacts - 1 if kind in CONTACT_DEFECTS else -1
        # (id, full name, email, phone, created) of clean, live contacts: the ones other systems know
        live: list[tuple[str, str, str, str, int]] = []
        for j, first in enumerate(firsts):
            last = r.choice(LAST_NAMES)
            contact_id = str(self.next_contact)
            self.next_contact += 1
            email: str | None = pattern.format(f=first, l=last).lower() + "@" + domain
            phone = phone_number(r, fmt, digits)
            c_created = r.randint(created, created + (anchor - created) // 2)
            c_modified = r.randint(c_created, anchor - 3600)
            archived_at = None
            if j == bad_contact:
                email, phone = self.planter.bad_contact(kind, occurrence, contact_id, email, phone, domain)
            elif j > 0 and r.random() < 0.02:
                archived_at = c_modified = r.randint(c_modified, anchor - 60)
                self.archived += 1
            else:
                live.append((contact_id, f"{first} {last}", email, phone, c_created))
            created_iso = iso_ms(c_created * 1000 + r.randrange(1000))
            modified_iso = iso_ms(c_modified * 1000 + r.randrange(1000))
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
        family.firsts, family.pattern, family.live = firsts, pattern, live

    def _deals(self, r: random.Random, family: Family) -> None:
        kind, occurrence, base, company_id = family.kind, family.occurrence, family.base, family.company_id
        stages, currency, created, live = family.stages, family.currency, family.created, family.live
        anchor = ANCHOR_S
        deals: list[Deal] = []
        for j, stage in enumerate(stages):
            deal_id = str(self.next_deal)
            self.next_deal += 1
            if currency == "JPY":
                minor = r.randint(10, 2000) * 1000
            else:
                minor = r.randint(5, 400) * 25_000
                if r.random() < 0.15:
                    minor -= 1
            d_created = r.randint(created, anchor - 30 * DAY)
            if stage in ("closedwon", "closedlost"):
                close = r.randint(d_created + DAY, min(d_created + 120 * DAY, anchor - 7 * DAY))
                d_modified = r.randint(close, anchor - 3600)
            else:
                close = r.randint(d_created + 14 * DAY, anchor + 90 * DAY)
                d_modified = r.randint(d_created, anchor - 3600)
            amount = decimal(minor, currency)
            closedate = iso_ms(close * 1000)
            if j == len(stages) - 1 and kind in DEAL_DEFECTS:
                if kind == "invalid_date":
                    year = time.gmtime(close).tm_year
                    closedate = (f"{year}-02-30", f"{year}-13-01", f"{year}-04-31")[occurrence % 3]
                    closedate += "T00:00:00.000Z"
                    self.planter.add(kind, deal_id, f"Deal closedate {closedate!r} is not a calendar date.")
                elif kind == "negative_amount":
                    amount = decimal(-minor, currency)
                    self.planter.add(kind, deal_id, f"Deal amount {amount} {currency} is negative.")
                else:
                    self.planter.add(kind, deal_id, "Deal stage 'closed_maybe' is not a stage of the default pipeline.")
            created_iso = iso_ms(d_created * 1000 + r.randrange(1000))
            modified_iso = iso_ms(d_modified * 1000 + r.randrange(1000))
            product = r.choice(PRODUCTS)
            self.w["hubspot/deals"].add(
                {
                    "id": deal_id,
                    "properties": {
                        "dealname": f"{base} - {product}",
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
            deals.append((deal_id, stage, minor, close, product))
        family.deals = deals

    def company(
        self, r: random.Random, name: str, domain: str, phone: str, city: str, created: int, modified: int
    ) -> str:
        cid = str(self.next_company)
        self.next_company += 1
        created_iso = iso_ms(created * 1000 + r.randrange(1000))
        modified_iso = iso_ms(modified * 1000 + r.randrange(1000))
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

    @staticmethod
    def stage(r: random.Random) -> str:
        x = r.random()
        if x < 0.40:
            return "closedwon"
        if x < 0.55:
            return "closedlost"
        return OPEN_STAGES[min(int((x - 0.55) / 0.09), 4)]
