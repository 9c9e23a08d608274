"""The canonical tables' column schemas, declared on their assets: one column per field of the field dictionary,
described by it, constrained by it and by the canonical pandera contracts (`contracts.py`).

Each column's description names the raw fields it is read from (`crm/contacts.properties.email`): column
lineage is shown only by Dagster's hosted product, so the sources are said where every UI shows them. The
tables themselves are laid out by `build.table_columns`, so the schema lists exactly the columns a build writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import TableColumn, TableSchema

from integration_assets.canonical import review
from integration_assets.canonical.build import table_columns
from integration_assets.canonical.contracts import MODELS
from integration_assets.core.columns import column, contracted_columns, sql_columns
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.schema import FieldDictionary, FieldSpec, Source
from integration_assets.systems import CATALOG

__all__ = ["canonical_schema", "customer_360_schema", "field_sources", "review_queue_schema"]

_BOOKKEEPING = {
    "person_id": "The person's canonical id: the CRM contact's, else the Zendesk user's (`crm:…`, `support:…`).",
    "is_deleted": "Deleted or archived at every source it was read from: kept, flagged, and left out of "
    "`dagster/row_count` (counted in `deleted_rows`).",
    "source_records": "The raw records merged into this row, as `system/object_type/id`, comma-separated.",
}
_CUSTOMER_360 = {
    "customer_id": "The client's canonical id (`canonical.customers.customer_id`).",
    "name": "The client's name (`canonical.customers.name`).",
    "owner": "The Zendesk account owner (`canonical.customers.account_owner`).",
    "plan": "The client's plan (`canonical.customers.plan`).",
    "currencies": "The currencies of its paid revenue and open receivables, comma-separated.",
    "revenue_paid": "Currency → integer minor units: succeeded payments less refunds (`canonical.payments`).",
    "open_receivables": "Currency → integer minor units: amount_remaining of open invoices (`canonical.invoices`).",
    "open_tickets": "Tickets open or waiting (`canonical.tickets`).",
    "won_deals": "Deals in stage won (`canonical.deals`).",
    "is_deleted": "The client is deleted at its source (`canonical.customers.is_deleted`).",
}
_REVIEW_QUEUE = {
    "system": "The role of the system the record is in: crm, billing, support.",
    "object_type": "The vendor's object type of the record.",
    "record_id": "The vendor's id of the record.",
    "reason_code": "Why it could not be accepted without a guess (e.g. invalid_email, ambiguous_owner).",
    "detail": "What was found, personal data masked.",
    "severity": "error (a broken payload or contract) or warning (a person decides).",
    "next_action": "What to do about it, and where.",
    "status": "open, resolved or ignored.",
    "resolution": "How it was resolved (a decision of review_decisions.yaml, or the record was fixed).",
    "first_seen": "When a run first found it.",
    "last_seen": "When a run last found it.",
    "occurrences": "How many runs found it.",
    "found_by": "The asset that found it (`canonical/customers`, `writeback/` and its flow, …).",
    "run_id": "The Dagster run that last found it.",
}


def _source_text(system: str, source: Source) -> str:
    """`crm/deals.properties.amount (major units, currency properties.deal_currency_code)`."""
    key = CATALOG.stream_of(system, source.object_type).key
    if source.amount is not None:
        return f"{key}.{source.amount} ({source.unit} units, currency {source.currency})"
    return f"{key}.{source.path}"


def field_sources(spec: FieldSpec) -> list[str]:
    """The raw fields a canonical field is read from, as `asset key.payload path`, in the dictionary's order."""
    return [_source_text(system, source) for system, source in spec.sources.items()]


def _description(spec: FieldSpec) -> str:
    parts = [spec.description.rstrip(".") + "."]
    sources = field_sources(spec)
    if sources:
        parts.append(f"From {', '.join(sources)}.")
    if spec.derived is not None:
        parts.append(f"Derived from {', '.join(spec.derived.from_)}: {spec.derived.rule}.")
    parts.append(f"Owner: {spec.owner}.")
    return " ".join(parts)


def _rules(spec: FieldSpec) -> list[str]:
    """The dictionary's rules for a field, as short constraint texts."""
    rules = []
    fmt = spec.format
    if fmt is not None:
        rules += [f"matches {fmt.pattern}"] if fmt.pattern else []
        rules += [f"at most {fmt.max_length} characters"] if fmt.max_length is not None else []
        rules += [f">= {fmt.min:g}"] if fmt.min is not None else []
        rules += [f"<= {fmt.max:g}"] if fmt.max is not None else []
        rules += [f"unit: {fmt.unit}"] if fmt.unit else []
    if spec.references:
        rules.append(f"references canonical.{spec.references}")
    if spec.type == "money":
        rules.append("integer minor units")
    empty = f"empty: default {spec.default!r}" if spec.empty == "default" else f"empty: {spec.empty}"
    return [*rules, empty, f"conflict: {spec.conflict}"]


def canonical_schema(table: str, dictionary: FieldDictionary | None = None) -> TableSchema:
    """The columns of `canonical.<table>` (an entity of the dictionary): every field, then the bookkeeping ones."""
    dictionary = dictionary or load_dictionary()
    fields = dictionary.entity(table).fields
    contracted = contracted_columns(MODELS[table]) if table in MODELS else {}
    columns: list[TableColumn] = []
    for name, definition in table_columns(dictionary, table).items():
        facts, not_null = contracted.get(name), "NOT NULL" in definition
        checks = list(facts.checks) if facts else []
        spec = fields.get(name)
        if spec is not None:
            columns.append(
                column(
                    name,
                    spec.type + ("[]" if spec.many else ""),
                    _description(spec),
                    nullable=not not_null and (facts is None or facts.nullable),
                    unique=bool(facts and facts.unique),
                    other=dict.fromkeys([*_rules(spec), *checks]),  # in order, once
                    pii=spec.pii,
                )
            )
        elif name.endswith("_currency") and name.removesuffix("_currency") in fields:
            columns.append(column(name, "currency", f"The currency of `{name.removesuffix('_currency')}`."))
        else:
            columns.append(
                column(
                    name,
                    definition.split()[0].lower(),
                    _BOOKKEEPING.get(name, ""),
                    nullable=not not_null and (facts is None or facts.nullable),
                    unique=bool(facts and facts.unique),
                    other=checks,
                )
            )
    return TableSchema(columns=columns)


def customer_360_schema(columns: Mapping[str, str]) -> TableSchema:
    """The columns of `canonical.customer_360` (declared in `assets.py`), described."""
    return TableSchema(columns=sql_columns(columns, _CUSTOMER_360, unique=["customer_id"]))


def review_queue_schema() -> TableSchema:
    """The columns of `ops.review_queue` (`review.COLUMNS`), described."""
    return TableSchema(columns=sql_columns(review.COLUMNS, _REVIEW_QUEUE))
