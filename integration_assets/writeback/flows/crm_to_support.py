"""Flow 3, CRM → support: the client's plan and lifetime value onto its Zendesk organization.

The fields written are those the field dictionary sends to `support.organizations.*` with the CRM as owner
(plan and lifetime value; the account owner belongs to support, so it is never written). The source's version
is the latest change of the CRM company and of its won deals (plan and lifetime value follow from them). Each
organization is re-read before its update and decided per field: equal values are left alone; a field still
holding what this flow last wrote (ops.sync_log) is ours to update, even when a support agent changed the
organization since; any other value on an organization changed after the source is a person's newer value
and is not overwritten: a conflict in the sync log and the review queue. The update carries `safe_update` with
the stamp just read, so a change made in between gets a 409: re-read, decide again, never a blind overwrite;
a re-read that finds our values (our own write whose answer was lost) records the organization's version as
ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandera.pandas as pa

from integration_assets.core.errors import Category, IntegrationError
from integration_assets.core.http import ApiClient
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.normalize import Money, vendor_id
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems.support.writes import ZendeskWrites, field_name
from integration_assets.writeback import sync_log
from integration_assets.writeback.flows.common import epoch_ms
from integration_assets.writeback.model import Outcome, PlannedWrite, Status, idempotency_key
from integration_assets.writeback.ownership import WritableField, vocabulary, writable_fields

__all__ = ["CrmToSupport"]

NAME = "crm_to_support"
REDECIDE = 3  # reads and decisions per write when safe_update keeps refusing (someone keeps editing)


def _same(before: Any, after: Any) -> bool:
    """Values compared as Zendesk holds them: 36000 and 36000.0 and "36000.00" are the same amount."""
    if before is None or after is None:
        return before == after
    try:
        return Decimal(str(before)) == Decimal(str(after))
    except ArithmeticError:
        return str(before) == str(after)


class CrmToSupport:
    name = NAME
    system = "support"

    def __init__(self, client: ApiClient, dictionary: FieldDictionary) -> None:
        self.zendesk = ZendeskWrites(client)
        self.dictionary = dictionary
        self.fields: list[WritableField] = writable_fields(dictionary, "crm", "support", "organizations")
        self._ours: dict[str, str] = {}
        self._values: dict[str, dict[str, Any]] = {}

    def prepare(self, warehouse: Warehouse) -> None:
        self._ours = sync_log.last_written(warehouse, NAME)
        self._values = sync_log.last_values(warehouse, NAME)

    def _value(self, field: WritableField, row: dict[str, Any]) -> Any:
        value = row.get(field.field)
        if value is None or field.spec.type != "money":
            return value
        currency = row.get(f"{field.field}_currency") or row.get("currency")
        if currency is None:
            return None if int(value) else 0  # no won deal: nothing in any currency
        return float(Money(int(value), currency).major_text())  # Zendesk keeps major units

    def plan(self, warehouse: Warehouse) -> list[PlannedWrite]:
        if not self.fields:
            return []
        columns = {f.field for f in self.fields} | {
            f"{f.field}_currency" for f in self.fields if f.spec.type == "money"
        }
        found = warehouse.records(
            f"SELECT customer_id, support_organization_id, crm_updated_at, {', '.join(sorted(columns))} "
            "FROM canonical.customers WHERE NOT is_deleted AND support_organization_id IS NOT NULL "
            "ORDER BY customer_id",
        )
        # plan and lifetime value follow from the client's won deals: the source changed when the company or
        # one of those deals last did
        deals_changed = {
            d["customer_id"]: d["changed"]
            for d in warehouse.records(
                "SELECT customer_id, max(crm_updated_at) AS changed FROM canonical.deals WHERE stage = 'won' "
                "AND NOT is_deleted AND customer_id IS NOT NULL GROUP BY customer_id",
            )
        }
        writes = []
        for row in found:
            values = {f.field: self._value(f, row) for f in self.fields}
            payload = {"organization_id": row["support_organization_id"], **values}
            moments = [epoch_ms(row["crm_updated_at"]), epoch_ms(deals_changed.get(row["customer_id"]))]
            version = str(max((m for m in moments if m is not None), default=0))
            organization = vendor_id(row["support_organization_id"])
            writes.append(
                PlannedWrite(
                    flow=NAME,
                    system="support",
                    object_type="organizations",
                    record_id=row["customer_id"],
                    operation="update",
                    payload=payload,
                    idempotency_key=idempotency_key(NAME, row["customer_id"], version, "fields", payload),
                    group=row["customer_id"],
                    review_ref=f"support/organizations/{organization}",
                    source_version=version,
                    destination_id=organization,
                )
            )
        return writes

    def contract(self, object_type: str) -> pa.DataFrameSchema:
        columns = {
            "record_id": pa.Column(str, pa.Check.str_matches(r"^crm:\S+$")),
            "organization_id": pa.Column(str, pa.Check.str_matches(r"^support:\S+$")),
        }
        for f in self.fields:
            if f.spec.type == "label":
                columns[f.field] = pa.Column(str, pa.Check.isin(vocabulary(self.dictionary, f.entity, f.field)))
            elif f.spec.type == "money":
                minimum = f.spec.format.min if f.spec.format and f.spec.format.min is not None else 0
                columns[f.field] = pa.Column(float, pa.Check.ge(minimum), nullable=True, coerce=True)
        return pa.DataFrameSchema(columns)

    def deliver(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        organization_id = write.destination_id or vendor_id(write.payload["organization_id"])
        for _ in range(REDECIDE):
            organization = self.zendesk.read_organization(organization_id)
            decided = self._decide(write, organization)
            if decided.status != Status.WOULD_UPDATE or dry_run:
                return decided
            try:
                updated = self.zendesk.update_organization_fields(
                    organization, {name: after for name, (_, after) in decided.changes.items()}
                )
            except IntegrationError as error:
                if error.category == Category.CONFLICT:
                    continue  # changed since it was read (by a person, or by our own write whose answer was lost)
                raise
            decided.status = Status.UPDATED
            decided.destination_version = updated.get("updated_at")
            decided.values = self._held(updated)
            return decided
        return Outcome(
            write,
            Status.CONFLICT,
            destination_id=organization_id,
            detail=f"safe_update refused the write {REDECIDE} times: the organization keeps changing",
        )

    def _held(self, organization: dict[str, Any]) -> dict[str, Any]:
        held = self.zendesk.fields(organization)
        return {field_name(f.path): held.get(field_name(f.path)) for f in self.fields}

    def _decide(self, write: PlannedWrite, organization: dict[str, Any]) -> Outcome:
        """Per field: equal values are left alone; a field still holding the value this flow last wrote is ours
        to update even when the organization changed since (a support agent editing a field support owns); a
        field holding anything else on an organization changed after the source is a person's newer value."""
        organization_id = str(organization["id"])
        held = self.zendesk.fields(organization)
        ours = self._values.get(organization_id) or {}
        unchanged_since_ours = self._ours.get(organization_id) == organization.get("updated_at")
        target = self.zendesk.updated_ms(organization)
        source = int(write.source_version or 0)
        newer = target is not None and target > source and not unchanged_since_ours
        changes, kept = {}, []
        for f in self.fields:
            name, after = field_name(f.path), write.payload.get(f.field)
            before = held.get(name)
            if after is None or _same(before, after):
                continue
            changes[name] = (before, after)
            if newer and not (name in ours and _same(before, ours[name])):
                kept.append(name)
        if not changes:
            return Outcome(
                write,
                Status.UNCHANGED,
                destination_id=organization_id,
                destination_version=organization.get("updated_at"),
                detail="already up to date",
                values=self._held(organization),
            )
        detail = ", ".join(f"{name}: {before!r} → {after!r}" for name, (before, after) in changes.items())
        if kept:
            changed = datetime.fromtimestamp(source / 1000, UTC).isoformat()
            return Outcome(
                write,
                Status.CONFLICT,
                destination_id=organization_id,
                detail=f"organization updated {organization.get('updated_at')}, after its CRM source ({changed}), "
                f"and its {', '.join(kept)} is not the value this flow wrote: not overwritten ({detail})",
                changes=changes,
            )
        return Outcome(write, Status.WOULD_UPDATE, destination_id=organization_id, detail=detail, changes=changes)
