"""What the canonical layer promises downstream (pandera, validated lazily before a table is written): keys
present, namespaced and unique; money in integer minor units, never negative; currencies ISO-4217 codes;
labels from their canonical vocabulary. A row that breaks it goes to review (`contract_violation`) instead of
into the table: a bug in the mapping must not reach dashboards."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from pandera.typing import Series

__all__ = ["MODELS", "failing_rows"]

_ID = r"^(crm|billing|support):\S+$"
_CUR = r"^[A-Z]{3}$"


class _Canonical(pa.DataFrameModel):
    is_deleted: Series[bool]

    class Config:
        coerce = False
        strict = False


class Customers(_Canonical):
    customer_id: Series[str] = pa.Field(unique=True, str_matches=r"^crm:\S+$")
    billing_customer_id: Series[str] = pa.Field(nullable=True, str_matches=_ID)
    support_organization_id: Series[str] = pa.Field(nullable=True, str_matches=_ID)
    plan: Series[str] = pa.Field(isin=["starter", "professional", "enterprise"])
    lifetime_value: Series[float] = pa.Field(nullable=True, ge=0, coerce=True)


class Contacts(_Canonical):
    person_id: Series[str] = pa.Field(unique=True, str_matches=_ID)
    email: Series[str] = pa.Field(nullable=True)


class Deals(_Canonical):
    deal_id: Series[str] = pa.Field(unique=True, str_matches=r"^crm:\S+$")
    customer_id: Series[str] = pa.Field(str_matches=r"^crm:\S+$")
    amount: Series[float] = pa.Field(ge=0, coerce=True)
    currency: Series[str] = pa.Field(str_matches=_CUR)
    stage: Series[str] = pa.Field(isin=["open", "won", "lost"])


class Invoices(_Canonical):
    invoice_id: Series[str] = pa.Field(unique=True, str_matches=r"^billing:in_\S+$")
    currency: Series[str] = pa.Field(str_matches=_CUR)
    total: Series[float] = pa.Field(ge=0, coerce=True)
    amount_remaining: Series[float] = pa.Field(ge=0, coerce=True)
    status: Series[str] = pa.Field(isin=["draft", "open", "paid", "void", "uncollectible"])


class Payments(_Canonical):
    payment_id: Series[str] = pa.Field(unique=True, str_matches=r"^billing:ch_\S+$")
    currency: Series[str] = pa.Field(str_matches=_CUR)
    amount: Series[float] = pa.Field(ge=0, coerce=True)
    status: Series[str] = pa.Field(isin=["succeeded", "pending", "failed"])


class Tickets(_Canonical):
    ticket_id: Series[str] = pa.Field(unique=True, str_matches=r"^support:\S+$")
    status: Series[str] = pa.Field(isin=["open", "waiting", "resolved", "deleted"])
    requester_id: Series[str] = pa.Field(str_matches=_ID)


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "customers": Customers,
    "contacts": Contacts,
    "deals": Deals,
    "invoices": Invoices,
    "payments": Payments,
    "tickets": Tickets,
}


def failing_rows(entity: str, frame: pd.DataFrame) -> tuple[dict[int, list[str]], pd.DataFrame]:
    """Positions of rows that break the entity's contract (with what they broke), and pandera's failure cases."""
    if frame.empty:
        return {}, pd.DataFrame()
    try:
        MODELS[entity].validate(frame.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return {}, pd.DataFrame()
    failed: dict[int, list[str]] = {}
    for row in cases.itertuples(index=False):
        index = row.index
        targets = range(len(frame)) if index is None or index != index else [int(index)]
        for position in targets:
            failed.setdefault(position, []).append(f"{row.column}: {row.check}")
    return failed, cases
