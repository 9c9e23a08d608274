"""Stripe's side of the dataset: a customer per billed company, an invoice per closed-won deal, its charges."""

from __future__ import annotations

import random
from typing import Any

from integration_sandbox.generator.defects import DefectPlanter
from integration_sandbox.generator.family import Family
from integration_sandbox.generator.formats import ANCHOR_S, DAY, ArrayWriter, decimal
from integration_sandbox.generator.vocabulary import ALNUM
from integration_sandbox.vendors.stripe.shapes import card_payment, invoice_constants, line_item, lines_list

_MIX = 0x9E3779B1  # odd and not a multiple of 3: a bijection modulo 36**8


class Billing:
    """Writes the Stripe files; invoice prefixes are unique per customer, mixed from the seed's offset."""

    def __init__(self, writers: dict[str, ArrayWriter], planter: DefectPlanter, prefix_offset: int) -> None:
        self.w, self.planter, self.prefix_offset = writers, planter, prefix_offset
        self.next_customer = 0

    def account(self, r: random.Random, family: Family) -> None:
        """The company's customer, an invoice per closed-won deal, and a charge for no invoice if planted."""
        kind, occurrence, company_id, name = family.kind, family.occurrence, family.company_id, family.name
        currency, created, contact, deals = family.currency, family.created, family.live[0], family.deals
        anchor = ANCHOR_S
        customer_id = stripe_id(r, "cus_")
        prefix = self.invoice_prefix()
        email = contact[2]
        created_customer = created + r.randint(60, 12 * 3600)
        self.w["stripe/customers"].add(
            customer(
                customer_id,
                created_customer,
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
        for deal_id, stage, minor, close, product in deals:
            if stage != "closedwon":
                continue
            this_kind = kind if target else None
            target = False
            if this_kind == "won_deal_without_invoice":
                self.planter.add(
                    this_kind,
                    deal_id,
                    f"Deal {deal_id} is closed-won for {decimal(minor, currency)} {currency} but has no invoice.",
                )
                continue
            number += 1
            self._invoice(
                r,
                this_kind,
                occurrence,
                deal_id,
                minor,
                close,
                product,
                currency,
                (customer_id, created_customer),
                f"{prefix}-{number:04d}",
                billing_details,
            )

        if kind == "charge_for_missing_invoice":
            missing = stripe_id(r, "in_")
            minor = r.randint(10, 2000) * 1000 if currency == "JPY" else r.randint(5, 400) * 25_000
            charge_id = self.charge(
                r,
                minor,
                currency.lower(),
                (customer_id, created_customer),
                missing,
                r.randint(created + DAY, anchor - 60),
                billing_details,
            )
            self.planter.add(kind, charge_id, f"Charge pays invoice {missing}, which does not exist.")

    def _invoice(
        self,
        r: random.Random,
        this_kind: str | None,
        occurrence: int,
        deal_id: str,
        minor: int,
        close: int,
        product: str,
        currency: str,
        payer: tuple[str, int],
        number: str,
        billing_details: dict[str, Any],
    ) -> None:
        """One closed-won deal's invoice and the charges paying it; `this_kind` is its planted defect, if any.

        `payer` is the customer's id and creation time (its card follows from them).
        """
        customer_id = payer[0]
        anchor = ANCHOR_S
        invoice_id = stripe_id(r, "in_")
        inv_created = close + r.randint(3600, 3 * DAY)
        finalized = inv_created + r.randint(60, 3600)
        x = r.random()
        status = "paid" if x < 0.70 else "open" if x < 0.95 else "void" if x < 0.98 else "uncollectible"
        total, inv_currency = minor, currency.lower()
        if this_kind in ("invoice_amount_mismatch", "paid_invoice_short"):
            status = "paid"
        elif this_kind == "unknown_currency":
            status, inv_currency = "open", "xyz"
            self.planter.add(
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
                    f"{decimal(minor, currency)} {currency} ({minor} in minor units)."
                )
            else:
                inv_currency = r.choice([c for c in ("usd", "eur", "gbp") if c != currency.lower()])
                detail = (
                    f"Invoice is in {inv_currency.upper()} while deal {deal_id} is in {currency} (same figure {total})."
                )
            self.planter.add(this_kind, invoice_id, detail)

        charges: list[int] = []
        if status == "paid":
            if this_kind == "paid_invoice_short":
                charges = [total * r.randint(40, 90) // 100]
                self.planter.add(
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
        latest = min(finalized + 20 * DAY, anchor - 60)
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
                "lines": lines_list(
                    invoice_id, _deal_lines(invoice_id, total, inv_currency, product, close, inv_created)
                ),
                "period_start": close,
                "period_end": inv_created,
                "created": inv_created,
                "due_date": inv_created + 30 * DAY,
                "number": number,
                "collection_method": "send_invoice",
                "metadata": {"hubspot_deal_id": deal_id},
                "status_transitions": {
                    "finalized_at": finalized,
                    "paid_at": times[-1] if status == "paid" else None,
                    "voided_at": r.randint(finalized + DAY, min(finalized + 60 * DAY, anchor - 60))
                    if status == "void"
                    else None,
                    "marked_uncollectible_at": r.randint(min(inv_created + 30 * DAY, anchor - 3600), anchor - 60)
                    if status == "uncollectible"
                    else None,
                },
                "livemode": False,
                "attempt_count": len(charges),  # each charge is a payment attempt that succeeded
                "attempted": bool(charges),
                "paid": status == "paid",
                "paid_out_of_band": False,
                **invoice_constants(),
            }
        )
        for amount, at in zip(charges, times, strict=True):
            self.charge(r, amount, inv_currency, payer, invoice_id, at, billing_details)

    def unowned_customer(self, r: random.Random, family: Family) -> None:
        """ambiguous_owner: a customer with no company id, whose email domain two companies share."""
        kind, domain, created, currency = family.kind, family.domain, family.created, family.currency
        company_id, sibling_id, anchor = family.company_id, family.sibling_id, ANCHOR_S
        customer_id = stripe_id(r, "cus_")
        email = f"accounts.payable@{domain}"
        self.w["stripe/customers"].add(
            customer(
                customer_id,
                r.randint(created, anchor - DAY),
                email,
                None,
                None,
                currency,
                {},
                self.invoice_prefix(),
            )
        )
        self.planter.add(
            kind,
            customer_id,
            f"Customer {email} has no hubspot_company_id and its domain {domain} belongs to companies "
            f"{company_id} and {sibling_id}.",
        )

    def invoice_prefix(self) -> str:
        value = (self.next_customer * _MIX + self.prefix_offset) % 36**8
        self.next_customer += 1
        out = []
        for _ in range(8):
            value, digit = divmod(value, 36)
            out.append(ALNUM[digit])
        return "".join(reversed(out))

    def charge(
        self,
        r: random.Random,
        amount: int,
        currency: str,
        payer: tuple[str, int],
        invoice_id: str,
        created: int,
        billing_details: dict[str, Any],
    ) -> str:
        """A succeeded charge on the card of `payer` (the customer's id and creation time)."""
        customer_id = payer[0]
        charge_id = stripe_id(r, "ch_")
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
                "payment_intent": stripe_id(r, "pi_"),
                "status": "succeeded",
                "paid": True,
                "captured": True,
                "refunded": False,
                "created": created,
                "metadata": {},
                "billing_details": billing_details,
                "disputed": False,
                "payment_method_details": card_payment(customer_id, payer[1], created),
                "livemode": False,
            }
        )
        return charge_id


def _deal_lines(
    invoice_id: str, total: int, currency: str, product: str, closed: int, created: int
) -> list[dict[str, Any]]:
    """The deal's product as one line, or (one invoice in four) the product and a setup fee, summing to `total`.

    Derived from the invoice id rather than drawn, so the rest of the dataset stays as it was. The items are
    added between the deal's close and the invoice's creation: the invoice's period.
    """
    suffix = invoice_id[3:]
    if ord(suffix[-1]) % 4:
        return [line_item(f"il_{suffix}0", invoice_id, total, currency, product, closed, closed)]
    fee = total * (10 + ord(suffix[-2]) % 16) // 100
    added = closed + (created - closed) // 2
    return [
        line_item(f"il_{suffix}0", invoice_id, total - fee, currency, product, closed, closed),
        line_item(f"il_{suffix}1", invoice_id, fee, currency, "Implementation and setup", added, added),
    ]


def stripe_id(r: random.Random, prefix: str) -> str:
    return prefix + "".join(r.choices(ALNUM, k=14))


def customer(
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
