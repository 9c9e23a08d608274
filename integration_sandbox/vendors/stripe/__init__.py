"""Stripe, imitated: `/v1` customers, invoices (with invoice items), charges, events and search.

What a connector meets at the real API and meets here too: form-encoded writes in bracket notation, lists
newest first with `starting_after`/`ending_before` cursors and `created[...]` ranges (no `updated` filter:
changes are seen through `/v1/events`, 30 days back), deleted customers kept as tombstones, idempotency keys
with Stripe's replay / mismatch / in-flight rules, restricted keys, and Stripe's error bodies and headers.
"""

from integration_sandbox.vendors.stripe.app import StripeApp

__all__ = ["StripeApp"]
