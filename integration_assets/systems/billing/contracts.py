"""What Stripe's API promises about each raw stream (pandera, validated lazily by
`canonical/raw_contracts.check_stream`): prefixed string ids, unique; amounts as integer minor units; Unix
timestamps as integers; currencies as text; nested objects as objects."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from integration_assets.core import promised  # noqa: F401  (registers the `promised` check)
from integration_assets.core.columns import PII

COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "id": "id",
        "email": "email",
        "name": "name",
        "currency": "currency",
        "metadata": "metadata",
        "created": "created",
    },
    "invoices": {
        "id": "id",
        "customer": "customer",
        "status": "status",
        "currency": "currency",
        "total": "total",
        "amount_due": "amount_due",
        "amount_paid": "amount_paid",
        "amount_remaining": "amount_remaining",
        "created": "created",
        "due_date": "due_date",
        "metadata": "metadata",
        "status_transitions": "status_transitions",
    },
    "charges": {
        "id": "id",
        "amount": "amount",
        "amount_refunded": "amount_refunded",
        "currency": "currency",
        "status": "status",
        "created": "created",
        "customer": "customer",
        "invoice": "invoice",
        "billing_details": "billing_details",
    },
}


def _id(prefix: str) -> pa.Field:  # type: ignore[valid-type]
    return pa.Field(unique=True, promised="str", str_startswith=prefix)


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class Customers(_Strict):
    id: Series[object] = _id("cus_")
    email: Series[object] = pa.Field(nullable=True, promised="str|null", metadata=PII)
    name: Series[object] = pa.Field(nullable=True, promised="str|null")
    currency: Series[object] = pa.Field(nullable=True, promised="str|null")
    metadata: Series[object] = pa.Field(promised="dict")
    created: Series[object] = pa.Field(promised="int")


class Invoices(_Strict):
    id: Series[object] = _id("in_")
    customer: Series[object] = pa.Field(promised="str")
    status: Series[object] = pa.Field(promised="str")
    currency: Series[object] = pa.Field(promised="str")
    total: Series[object] = pa.Field(promised="int")
    amount_due: Series[object] = pa.Field(promised="int")
    amount_paid: Series[object] = pa.Field(promised="int")
    amount_remaining: Series[object] = pa.Field(promised="int")
    created: Series[object] = pa.Field(promised="int")
    due_date: Series[object] = pa.Field(nullable=True, promised="int|null")
    metadata: Series[object] = pa.Field(promised="dict")
    status_transitions: Series[object] = pa.Field(promised="dict")


class Charges(_Strict):
    id: Series[object] = _id("ch_")
    amount: Series[object] = pa.Field(promised="int")
    amount_refunded: Series[object] = pa.Field(promised="int")
    currency: Series[object] = pa.Field(promised="str")
    status: Series[object] = pa.Field(promised="str")
    created: Series[object] = pa.Field(promised="int")
    customer: Series[object] = pa.Field(nullable=True, promised="str|null")
    invoice: Series[object] = pa.Field(nullable=True, promised="str|null")
    billing_details: Series[object] = pa.Field(promised="dict", metadata=PII)  # the payer's name and email


MODELS: dict[str, type[pa.DataFrameModel]] = {"customers": Customers, "invoices": Invoices, "charges": Charges}
