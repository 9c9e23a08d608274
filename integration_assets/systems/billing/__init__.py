"""Stripe: the system of record for billing customers, invoices and payments."""
