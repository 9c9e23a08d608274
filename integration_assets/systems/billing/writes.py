"""Stripe's side of the write-back: customers and invoices created exactly once.

Every create carries an `Idempotency-Key`, so a retry after a lost response replays Stripe's first answer
instead of creating a second record; and before creating, the flow looks the record up by the link Stripe
keeps in metadata, so a write replayed after the key expired (24 h) still finds what it made. Invoices are
looked up by listing the customer's invoices (a consistent read) rather than through search, which Stripe
documents as lagging behind writes by up to a minute; customers the flow made before are read by id first.

A create answered with `Idempotent-Replayed: true` made nothing: Stripe returned the stored answer of an
earlier request with the same key (another run's, as when two runs deliver the same plan at once). The write
path notes it (`core/replays.note_keyed_write`) so the sync log says `idempotent_replay`, not a second "created";
a replay on a retry of the same call answers our own lost response, which did create the record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from integration_assets.core.access import Operation
from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.http import ApiClient
from integration_assets.core.replays import note_keyed_write

__all__ = ["StripeWrites", "form", "metadata_key", "status_changed_at"]

REPLAYED_HEADER = "Idempotent-Replayed"  # Stripe: "true" when the answer is the stored one of an earlier request

# the moment an invoice entered each status, in status_transitions (a draft's is its creation)
_TRANSITION = {
    "open": "finalized_at",
    "paid": "paid_at",
    "void": "voided_at",
    "uncollectible": "marked_uncollectible_at",
}


def metadata_key(path: str) -> str:
    """`metadata.hubspot_deal_id` (a field dictionary path) → `hubspot_deal_id`."""
    if not path.startswith("metadata."):
        raise ValueError(f"{path!r} is not a Stripe metadata path")
    return path.removeprefix("metadata.")


def form(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's bracket notation: `{"metadata": {"a": 1}}` → `{"metadata[a]": "1"}`; None is left out."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, Mapping):
            flat.update(form(value, name))
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        elif value is not None:
            flat[name] = str(value)
    return flat


def status_changed_at(invoice: Mapping[str, Any]) -> datetime | None:
    """When the invoice entered its current status: the billing event a CRM copy of the status follows."""
    transitions = invoice.get("status_transitions") or {}
    moment = transitions.get(_TRANSITION.get(str(invoice.get("status")), ""), None) or invoice.get("created")
    return datetime.fromtimestamp(int(moment), UTC) if moment else None


class StripeWrites:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _post(self, object_type: str, operation: Operation, template: str, params: Mapping[str, Any], key: str, **kw):
        response = self.client.call(
            operation,
            object_type,
            "POST",
            template,
            form=form(params),
            headers={"Idempotency-Key": key},
            idempotent=True,  # the key makes a repeat replay the first answer
            **kw,
        )
        note_keyed_write(key, replayed=self._replayed_for_another(response.headers))
        return response.body

    def _replayed_for_another(self, headers: Mapping[str, str]) -> bool:
        """A stored answer to a request that was not this call's own: on the call's first attempt (a replay on a
        later attempt answers our own earlier attempt, whose response was lost after Stripe made the record)."""
        if str({k.lower(): v for k, v in headers.items()}.get(REPLAYED_HEADER.lower(), "")).lower() != "true":
            return False
        records = self.client.call_log.records
        return not records or records[-1].attempt == 1

    # customers ------------------------------------------------------------------------------------------
    def find_customer(self, link: str, value: str) -> dict | None:
        """The live customer whose metadata links it to `value` (the oldest, if a person made several)."""
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        body = self.client.call(
            Operation.READ,
            "customers",
            "GET",
            "/v1/customers/search",
            params={"query": f'metadata["{metadata_key(link)}"]:"{escaped}"', "limit": 100},
        ).body
        found = sorted(body.get("data") or [], key=lambda c: (c.get("created") or 0, c["id"]))
        return found[0] if found else None

    def get_customer(self, customer_id: str) -> dict | None:
        """The customer by id (a consistent read, unlike search); None when Stripe no longer knows it."""
        try:
            return self.client.call(
                Operation.READ, "customers", "GET", "/v1/customers/{id}", path_params={"id": customer_id}
            ).body
        except IntegrationError as error:
            if error.category == Category.NOT_FOUND:
                return None
            raise

    def create_customer(self, *, name: str, link: str, value: str, key: str) -> dict:
        params = {"name": name, "metadata": {metadata_key(link): value}}
        return self._post("customers", Operation.CREATE, "/v1/customers", params, key, record_id=value)

    # invoices -------------------------------------------------------------------------------------------
    def invoices_of(self, customer: str) -> Iterator[dict]:
        after: str | None = None
        while True:
            params = {"customer": customer, "limit": 100, **({"starting_after": after} if after else {})}
            body = self.client.call(Operation.READ, "invoices", "GET", "/v1/invoices", params=params).body
            page = body.get("data") or []
            yield from page
            if not body.get("has_more") or not page:
                return
            after = page[-1]["id"]

    def find_invoices(self, customer: str, link: str, value: str) -> list[dict]:
        """The customer's invoices whose metadata links them to `value`, oldest first."""
        key = metadata_key(link)
        found = [i for i in self.invoices_of(customer) if str((i.get("metadata") or {}).get(key)) == value]
        return sorted(found, key=lambda i: (i.get("created") or 0, i["id"]))

    def create_invoice(
        self, *, customer: str, currency: str, description: str, days_until_due: int, link: str, value: str, key: str
    ) -> dict:
        params = {
            "customer": customer,
            "currency": currency.lower(),
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": description,
            "metadata": {metadata_key(link): value},
        }
        return self._post("invoices", Operation.CREATE, "/v1/invoices", params, key, record_id=value)

    def add_line(self, *, invoice: dict, amount: int, description: str, link: str, value: str, key: str) -> dict:
        params = {
            "customer": invoice["customer"],
            "invoice": invoice["id"],
            "amount": amount,
            "currency": invoice["currency"],
            "description": description,
            "metadata": {metadata_key(link): value},
        }
        return self._post("invoiceitems", Operation.CREATE, "/v1/invoiceitems", params, key, record_id=value)

    def get_invoice(self, invoice_id: str) -> dict:
        return self.client.call(
            Operation.READ, "invoices", "GET", "/v1/invoices/{id}", path_params={"id": invoice_id}
        ).body

    def finalize(self, invoice_id: str, key: str) -> dict:
        return self._post(
            "invoices",
            Operation.UPDATE,
            "/v1/invoices/{id}/finalize",
            {},
            key,
            path_params={"id": invoice_id},
            record_id=invoice_id,
        )

    @staticmethod
    def has_lines(invoice: Mapping[str, Any]) -> bool:
        lines = invoice.get("lines") or {}
        return bool(lines.get("total_count") or lines.get("data"))
