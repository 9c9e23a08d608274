"""Stripe's endpoints and what each one does, for the access policy (see `core/access.py`).

From Stripe's API (../shared/reference/openapi/stripe.json): every write is a POST, so the route tells a create
(`POST /v1/customers`) from an update (`POST /v1/customers/{id}`, an invoice's finalize or pay). Voiding an
invoice cannot be undone, so it needs `delete`, like deleting a draft.
"""

from __future__ import annotations

from integration_assets.core.access import Operation, RouteTable

__all__ = ["ROUTES"]

READ, CREATE, UPDATE, DELETE = Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.DELETE

ROUTES = RouteTable.of(
    "billing",
    [
        ("GET", "/v1/customers", "customers", READ),
        ("GET", "/v1/customers/search", "customers", READ),
        ("GET", "/v1/customers/{id}", "customers", READ),
        ("POST", "/v1/customers", "customers", CREATE),
        ("POST", "/v1/customers/{id}", "customers", UPDATE),
        ("DELETE", "/v1/customers/{id}", "customers", DELETE),
        ("GET", "/v1/invoices", "invoices", READ),
        ("GET", "/v1/invoices/search", "invoices", READ),
        ("GET", "/v1/invoices/{id}", "invoices", READ),
        ("GET", "/v1/invoices/{id}/lines", "invoices", READ),
        ("POST", "/v1/invoices", "invoices", CREATE),
        ("POST", "/v1/invoices/{id}", "invoices", UPDATE),
        ("POST", "/v1/invoices/{id}/finalize", "invoices", UPDATE),
        ("POST", "/v1/invoices/{id}/pay", "invoices", UPDATE),
        ("POST", "/v1/invoices/{id}/mark_uncollectible", "invoices", UPDATE),
        ("POST", "/v1/invoices/{id}/void", "invoices", DELETE),
        ("DELETE", "/v1/invoices/{id}", "invoices", DELETE),
        ("GET", "/v1/invoiceitems", "invoiceitems", READ),
        ("GET", "/v1/invoiceitems/{id}", "invoiceitems", READ),
        ("POST", "/v1/invoiceitems", "invoiceitems", CREATE),
        ("GET", "/v1/charges", "charges", READ),
        ("GET", "/v1/charges/search", "charges", READ),
        ("GET", "/v1/charges/{id}", "charges", READ),
        ("POST", "/v1/charges/{id}", "charges", UPDATE),
        ("GET", "/v1/events", "events", READ),
        ("GET", "/v1/events/{id}", "events", READ),
    ],
)
