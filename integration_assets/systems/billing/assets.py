"""Stripe's source assets: billing/customers, billing/invoices, billing/payments (charges)."""

from integration_assets.core.source_asset import build_source_asset
from integration_assets.systems.billing.streams import STREAMS

DESCRIPTIONS = {
    "customers": "Stripe customers: who pays, linked to CRM companies through metadata and email.",
    "invoices": "Stripe invoices with status, amounts in minor units and the CRM deal in metadata.",
    "payments": "Stripe charges: the money that arrived, and the invoice it pays.",
}

assets = [build_source_asset(s, vendor="stripe", description=DESCRIPTIONS[s.asset_name]) for s in STREAMS]
