"""Flow 2, billing → CRM: the invoice's status onto its HubSpot deal, and only what billing owns.

The properties written are those the field dictionary sends to `crm.deals.*` with billing as owner (today
`invoice_status`); companies get nothing because the dictionary gives billing no company property. Before
each PATCH the deal is re-read and each property decided on its own: a value the deal already holds is left
alone; an empty property, or one still holding the value this flow last wrote (ops.sync_log), is billing's to
update, whatever else changed on the deal since; a value a person set after the billing event (by the
property's history when HubSpot serves it, else by the deal's last change) is kept and reported as a conflict,
since HubSpot itself would let the last write win. A person's free text never reaches details: it is masked.
"""

from __future__ import annotations

import pandera.pandas as pa

from integration_assets.core.evidence import mask
from integration_assets.core.http import ApiClient
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.normalize import vendor_id
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.writes import status_changed_at
from integration_assets.systems.crm.writes import HubSpotWrites, property_name
from integration_assets.writeback import sync_log
from integration_assets.writeback.model import Outcome, PlannedWrite, Status, idempotency_key
from integration_assets.writeback.ownership import WritableField, vocabulary, writable_fields

__all__ = ["BillingToCrm"]

INVOICES = CATALOG.stream("billing/invoices").raw_table  # Stripe invoices as landed

NAME = "billing_to_crm"


class BillingToCrm:
    name = NAME
    system = "crm"

    def __init__(self, client: ApiClient, dictionary: FieldDictionary) -> None:
        self.hubspot = HubSpotWrites(client)
        self.dictionary = dictionary
        self.fields: dict[str, list[WritableField]] = {
            object_type: writable_fields(dictionary, "billing", "crm", object_type)
            for object_type in ("deals", "companies")
        }
        self._ours: dict[str, str] = {}
        self._values: dict[str, dict] = {}
        self._vocabulary = {
            f.field: set(vocabulary(dictionary, f.entity, f.field)) for fs in self.fields.values() for f in fs
        }

    def prepare(self, warehouse: Warehouse) -> None:
        self._ours = sync_log.last_written(warehouse, NAME)
        self._values = sync_log.last_values(warehouse, NAME)

    def plan(self, warehouse: Warehouse) -> list[PlannedWrite]:
        deal_fields = [f for f in self.fields["deals"] if f.entity == "deals"]
        if not deal_fields:
            return []
        columns = ", ".join(f"d.{f.field}" for f in deal_fields)
        warehouse.ensure_raw_table(INVOICES)
        found = warehouse.records(
            f"SELECT d.deal_id, {columns}, i.invoice_id FROM canonical.deals d "
            "JOIN canonical.invoices i ON i.deal_id = d.deal_id AND NOT i.is_deleted "
            f"WHERE NOT d.is_deleted AND ({' OR '.join(f'd.{f.field} IS NOT NULL' for f in deal_fields)})",
        )
        payloads = {
            rid: payload for rid, payload in warehouse.query(f"SELECT id, payload FROM {INVOICES} WHERE NOT is_deleted")
        }
        writes = []
        for row in found:
            event = status_changed_at(payloads.get(vendor_id(row["invoice_id"])) or {})
            version = str(int(event.timestamp() * 1000)) if event else "0"
            payload = {
                "deal_id": row["deal_id"],
                **{f.field: row[f.field] for f in deal_fields},
                "billing_event_at": event.isoformat() if event else None,
            }
            deal = vendor_id(row["deal_id"])
            writes.append(
                PlannedWrite(
                    flow=NAME,
                    system="crm",
                    object_type="deals",
                    record_id=row["deal_id"],
                    operation="update",
                    payload=payload,
                    idempotency_key=idempotency_key(NAME, row["deal_id"], version, "properties", payload),
                    group=row["deal_id"],
                    review_ref=f"crm/deals/{deal}",
                    source_version=version,
                    destination_id=deal,
                )
            )
        return writes

    def contract(self, object_type: str) -> pa.DataFrameSchema:
        columns = {"record_id": pa.Column(str, pa.Check.str_matches(r"^crm:\S+$"))}
        for f in self.fields[object_type]:
            if f.spec.type == "label":
                allowed = vocabulary(self.dictionary, f.entity, f.field)
                columns[f.field] = pa.Column(str, pa.Check.isin(allowed), nullable=f.spec.empty == "allow")
        return pa.DataFrameSchema(columns)

    def _shown(self, field: str, value: object) -> object:
        """A value for details and logs: billing's own vocabulary as it is, anything else (a person's free
        text) masked."""
        allowed = self._vocabulary.get(field, set())
        return value if value is None or value in allowed else mask(value)

    def _conflicts(self, name: str, before: object, event: int, current: dict, deal: str) -> bool:
        """Whether the deal's value of one property is a person's, set after the billing event: not empty, not
        what this flow last wrote there, and changed after the event (by the property's own history when
        HubSpot serves it, else by the deal's last change, which any property moves)."""
        if before in (None, ""):
            return False
        if before == (self._values.get(deal) or {}).get(name):
            return False  # still the value this flow wrote: ours to update
        changed = self.hubspot.property_changed_ms(current, name, before)
        if changed is not None:
            return changed > event
        if self._ours.get(deal) == self.hubspot.modified(self.OBJECT, current):
            return False  # the deal has not changed since this flow's last write
        modified = self.hubspot.modified_ms(self.OBJECT, current)
        return modified is not None and modified > event

    OBJECT = "deals"

    def deliver(self, write: PlannedWrite, *, dry_run: bool) -> Outcome:
        fields = self.fields[write.object_type]
        names = {f.field: property_name(f.path) for f in fields}
        deal = write.destination_id or vendor_id(write.record_id)
        current = self.hubspot.read(write.object_type, deal, list(names.values()), history=True)
        properties = current.get("properties") or {}
        held = {names[field]: properties.get(names[field]) or None for field in names}
        wanted = {names[field]: write.payload.get(field) for field in names}
        changes = {name: (held[name], wanted[name]) for name in names.values() if held[name] != wanted[name]}
        if not changes:
            return Outcome(
                write, Status.UNCHANGED, destination_id=deal, detail="the deal holds these values", values=held
            )
        event = int(write.source_version or 0)
        field_of = {name: field for field, name in names.items()}
        kept = [name for name, (before, _) in changes.items() if self._conflicts(name, before, event, current, deal)]
        if kept:
            changed = self.hubspot.modified(write.object_type, current)
            shown = {n: self._shown(field_of[n], changes[n][0]) for n in kept}
            return Outcome(
                write,
                Status.CONFLICT,
                destination_id=deal,
                detail=f"deal {', '.join(kept)} set by a person after the billing event "
                f"{write.payload.get('billing_event_at')} (deal last changed {changed}): its {shown} is kept over "
                f"billing's { ({n: changes[n][1] for n in kept}) }",
                changes={n: (self._shown(field_of[n], b), a) for n, (b, a) in changes.items()},
            )
        detail = ", ".join(
            f"{name}: {self._shown(field_of[name], before)!r} → {after!r}" for name, (before, after) in changes.items()
        )
        if dry_run:
            return Outcome(write, Status.WOULD_UPDATE, destination_id=deal, detail=detail, changes=changes)
        updated = self.hubspot.update(write.object_type, deal, {name: after for name, (_, after) in changes.items()})
        return Outcome(
            write,
            Status.UPDATED,
            destination_id=deal,
            destination_version=self.hubspot.modified(write.object_type, updated),
            detail=detail,
            changes={n: (self._shown(field_of[n], b), a) for n, (b, a) in changes.items()},
            values={**held, **wanted},
        )
