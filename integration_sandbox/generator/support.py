"""Zendesk's side of the dataset: agents, an organization per supported company, its end-users and tickets."""

from __future__ import annotations

import random

from integration_sandbox.generator.defects import DefectPlanter
from integration_sandbox.generator.family import Family
from integration_sandbox.generator.formats import ANCHOR_S, DAY, ArrayWriter, iso_s, major, phone_number
from integration_sandbox.generator.vocabulary import (
    ACCOUNT_OWNERS,
    AGENT_FIRST_NAMES,
    AGENT_LAST_NAMES,
    FIRST_NAMES,
    LAST_NAMES,
    PHONE_FORMATS,
    PRIORITIES,
    PRODUCTS,
    TICKET_STATUSES,
    TICKET_SUBJECTS,
    TICKET_TYPES,
)

PLANS = ("starter", "professional", "enterprise")


def implied_plan(closed_won_deals: int) -> str:
    """The Zendesk organization plan the CRM implies: by the company's number of closed-won deals."""
    return PLANS[min(max(closed_won_deals, 0), len(PLANS) - 1)]


class Support:
    """Writes the Zendesk files; the agents come first, as tickets are assigned to them."""

    def __init__(self, writers: dict[str, ArrayWriter], planter: DefectPlanter) -> None:
        self.w, self.planter = writers, planter
        self.next_org = 360_000_001
        self.next_user = 370_000_001
        self.next_ticket = 1
        self.agents: list[int] = []

    def add_agents(self, seed: int, scale: int) -> None:
        r = random.Random(f"integration-assets/{seed}/agents")
        count = min(20, max(1, scale // 50))
        names = r.sample([(f, la) for f in AGENT_FIRST_NAMES for la in AGENT_LAST_NAMES], count)
        for first, last in names:
            created = ANCHOR_S - r.randint(380 * DAY, 400 * DAY)
            updated = r.randint(created, ANCHOR_S - 3600)
            _, fmt, digits = PHONE_FORMATS[r.randrange(6)]
            self.agents.append(
                self.user(
                    f"{first} {last}",
                    f"{first}.{last}@sandbox-support.test".lower(),
                    phone_number(r, fmt, digits),
                    "agent",
                    None,
                    None,
                    created,
                    updated,
                )
            )

    def organization(self, r: random.Random, family: Family) -> None:
        """The company's organization, a user per known contact, their tickets (and a stranger's, if planted)."""
        kind, company_id, name, domain = family.kind, family.company_id, family.name, family.domain
        created, modified, won, deals = family.created, family.modified, family.won, family.deals
        currency, live, firsts, pattern = family.currency, family.live, family.firsts, family.pattern
        fmt, digits = family.fmt, family.digits
        anchor = ANCHOR_S
        org_id = self.next_org
        self.next_org += 1
        org_created = created + r.randint(0, min(10 * DAY, (modified - created) // 4))
        org_updated = org_created + r.randint(0, (modified - org_created) // 2)
        plan = implied_plan(won)
        if kind == "target_newer_than_source":
            org_updated = modified + r.randint(3600, min(10 * DAY, anchor - modified - 60))
            crm_plan = plan
            plan = r.choice([p for p in PLANS if p != crm_plan])
            self.planter.add(
                kind,
                org_id,
                f"Organization updated {iso_s(org_updated)}, after company {company_id} was last modified "
                f"{iso_s(modified)}; its plan {plan!r} differs from the CRM-implied {crm_plan!r}.",
            )
        lifetime = sum(minor for _, stage, minor, _, _ in deals if stage == "closedwon")
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
                    "account_owner": r.choice(ACCOUNT_OWNERS),
                    "lifetime_value": major(lifetime, currency),
                },
                "created_at": iso_s(org_created),
                "updated_at": iso_s(org_updated),
            }
        )
        users: list[tuple[int, int]] = []  # (user id, created)
        for contact_id, full_name, email, phone, c_created in live:
            u_created = max(c_created, org_created) + r.randint(0, 2 * DAY)
            u_updated = r.randint(u_created, anchor - 3600)
            uid = self.user(full_name, email, phone, "end-user", contact_id, org_id, u_created, u_updated)
            users.append((uid, u_created))
        tickets = r.choice((0, 1, 2, 2, 3, 3))
        for _ in range(tickets):
            self.ticket(r, r.choice(users), org_id, org_created)
        if kind == "unknown_requester":
            first = r.choice([f for f in FIRST_NAMES if f not in firsts])
            last = r.choice(LAST_NAMES)
            email = pattern.format(f=first, l=last).lower() + "@" + domain
            u_created = r.randint(org_created, anchor - 10 * DAY)
            uid = self.user(
                f"{first} {last}",
                email,
                phone_number(r, fmt, digits),
                "end-user",
                None,
                org_id,
                u_created,
                r.randint(u_created, anchor - 3600),
            )
            ticket_id = self.ticket(r, (uid, u_created), org_id, org_created)
            self.planter.add(
                kind,
                ticket_id,
                f"Ticket requester {uid} ({email}) has no external_id and matches no CRM contact.",
            )

    def user(
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
                "created_at": iso_s(created),
                "updated_at": iso_s(updated),
            }
        )
        return uid

    def ticket(self, r: random.Random, requester: tuple[int, int], org_id: int, org_created: int) -> int:
        anchor = ANCHOR_S
        ticket_id = self.next_ticket
        self.next_ticket += 1
        uid, u_created = requester
        t_created = r.randint(max(u_created, org_created) + 3600, anchor - 7200)
        t_updated = r.randint(t_created, anchor - 60)
        status = r.choice(TICKET_STATUSES)
        subject = r.choice(TICKET_SUBJECTS).format(n=r.randint(2, 25), p=r.choice(PRODUCTS).lower())
        self.w["zendesk/tickets"].add(
            {
                "id": ticket_id,
                "url": f"https://sandbox.zendesk.com/api/v2/tickets/{ticket_id}.json",
                "external_id": None,
                "type": r.choice(TICKET_TYPES),
                "subject": subject,
                "raw_subject": subject,
                "description": f"Hello team,\n\n{subject}. Could you take a look?\n\nThanks",
                "priority": r.choice(PRIORITIES),
                "status": status,
                "requester_id": uid,
                "submitter_id": uid,
                "assignee_id": None if status == "new" else r.choice(self.agents),
                "organization_id": org_id,
                "group_id": None,
                "tags": [],
                "custom_fields": [],
                "via": {"channel": "email"},
                "created_at": iso_s(t_created),
                "updated_at": iso_s(t_updated),
                "generated_timestamp": t_updated,
            }
        )
        return ticket_id
