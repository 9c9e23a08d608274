"""The parts of Stripe's invoices and charges that both the dataset and the write paths build.

Stripe's published document requires them on every invoice and charge; an account without tax, shipping,
credit notes or customer balances sends the same values each time, and a line item or a card is built the
same way whoever makes it. No import from the rest of the sandbox: the generator uses this module too.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

# Stripe's test cards (brand, last4, funding, fingerprint): test-mode charges are paid with these, and a
# fingerprint names the card number, so every customer paying with 4242 shares it.
TEST_CARDS = (
    ("visa", "4242", "credit", "Xt5EWLLDS7FJjR1c"),
    ("visa", "5556", "debit", "8Gq3TfZ2rN1vKw0P"),
    ("mastercard", "4444", "credit", "Lm7HzQ0sJd4YbE2c"),
    ("mastercard", "8210", "debit", "Pw3Nc9RtA6uXe1Gf"),
    ("amex", "0005", "credit", "Ve8Ks2DqW5hMz0Tn"),
    ("discover", "1117", "credit", "Qa1Jf6YpC3wLr8Ub"),
)


def invoice_constants() -> dict[str, Any]:
    """Required invoice fields whose values follow from the account: no tax, shipping, credit notes or balance."""
    return {
        "amount_shipping": 0,
        "automatic_tax": {"enabled": False, "status": None},
        "default_tax_rates": [],
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "total_tax_amounts": [],
    }


def line_item(
    line_id: str,
    invoice_id: str,
    amount: int,
    currency: str,
    description: str | None,
    period_start: int,
    period_end: int,
    *,
    invoice_item: str | None = None,
    quantity: int = 1,
    discountable: bool = True,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-off (`invoiceitem`) line of `amount` minor units: no price, discount, tax or proration."""
    line: dict[str, Any] = {
        "id": line_id,
        "object": "line_item",
        "amount": amount,
        "amount_excluding_tax": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": discountable,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": metadata or {},
        "period": {"end": period_end, "start": period_start},
        "price": None,
        "proration": False,
        "proration_details": {"credited_items": None},
        "quantity": quantity,
        "subscription": None,
        "tax_amounts": [],
        "tax_rates": [],
        "type": "invoiceitem",
        "unit_amount_excluding_tax": str(amount // quantity) if quantity else str(amount),
    }
    if invoice_item is not None:
        line["invoice_item"] = invoice_item
    return line


def lines_list(invoice_id: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """An invoice's `lines`: a Stripe list holding every line (the sandbox's invoices have few)."""
    return {
        "object": "list",
        "data": lines,
        "has_more": False,
        "total_count": len(lines),
        "url": f"/v1/invoices/{invoice_id}/lines",
    }


def card_payment(customer_id: str, customer_created: int, charged_at: int) -> dict[str, Any]:
    """`payment_method_details` of a charge on the customer's card, unexpired at `charged_at`.

    The card follows from the customer's id, so all its charges show the same card; it is issued when the
    customer is created, valid 24 to 59 months, and reissued on expiry (as Stripe's card updater does).
    """
    digest = zlib.crc32(customer_id.encode())
    brand, last4, funding, fingerprint = TEST_CARDS[digest % len(TEST_CARDS)]
    validity = 24 + (digest >> 8) % 36
    issued, charged = time.gmtime(customer_created), time.gmtime(charged_at)
    expiry = issued.tm_year * 12 + issued.tm_mon - 1 + validity  # months since year 0
    charged_month = charged.tm_year * 12 + charged.tm_mon - 1
    if expiry <= charged_month:
        expiry += validity * ((charged_month - expiry) // validity + 1)
    exp_year, exp_month0 = divmod(expiry, 12)
    return {
        "card": {
            "brand": brand,
            "country": "US",
            "exp_month": exp_month0 + 1,
            "exp_year": exp_year,
            "fingerprint": fingerprint,
            "funding": funding,
            "last4": last4,
            "network": brand,
        },
        "type": "card",
    }
