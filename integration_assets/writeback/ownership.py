"""Which canonical fields a flow may write, read from the field dictionary rather than listed twice.

A flow from `source` to `system.object_type` may write a field only when the dictionary names that target
among the field's destinations *and* names `source` as the field's owner: a property billing does not own is
never written by billing, whatever the flow's code would like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from integration_assets.mapping.schema import FieldDictionary, FieldSpec

__all__ = ["WritableField", "link_path", "vocabulary", "writable_fields"]

_DESTINATION = re.compile(r"(?P<system>[a-z_]+)\.(?P<object_type>[a-z_0-9]+)\.(?P<path>.+)")


@dataclass(frozen=True)
class WritableField:
    entity: str
    field: str
    path: str  # where the destination holds it, e.g. properties.invoice_status
    spec: FieldSpec


def writable_fields(dictionary: FieldDictionary, source: str, system: str, object_type: str) -> list[WritableField]:
    found = []
    for entity_name, entity in dictionary.entities.items():
        for field_name, spec in entity.fields.items():
            if spec.owner != source:
                continue
            for destination in spec.destinations:
                match = _DESTINATION.fullmatch(destination)
                if match and (match["system"], match["object_type"]) == (system, object_type):
                    found.append(WritableField(entity_name, field_name, match["path"], spec))
    return found


def link_path(dictionary: FieldDictionary, entity: str, field: str, system: str) -> str:
    """Where `system` keeps another system's id for us (e.g. metadata.hubspot_deal_id on Stripe invoices)."""
    source = dictionary.entity(entity).field(field).sources.get(system)
    if source is None or source.path is None or source.id_system is None:
        raise KeyError(f"the dictionary has no {system} link for {entity}.{field}")
    return source.path


def vocabulary(dictionary: FieldDictionary, entity: str, field: str) -> list[str]:
    """The canonical labels a label field may take (its own label map, or the one it derives from)."""
    spec = dictionary.entity(entity).field(field)
    labels = [s.label for s in spec.sources.values() if s.label]
    if not labels and spec.derived is not None:
        for ref in spec.derived.from_:
            other_entity, _, other_field = ref.partition(".")
            other = dictionary.entity(other_entity).field(other_field)
            labels += [s.label for s in other.sources.values() if s.label]
    return sorted({value for label in labels for value in dictionary.labels[label].canonical})
