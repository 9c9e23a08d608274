"""Links to records deleted at the source: a canonical row never points at a client or person whose source record
is archived or deleted.

HubSpot stops showing a deal's association to a company (or contact) once that company is archived, without
changing the deal's `updatedAt`: no incremental sync reads the deal again, so raw.crm_deals keeps the link as
HubSpot last showed it (the connector does not look for such links, see `systems/crm/streams.py`). The build
therefore checks each direct link (a record naming another record of its own system by id: a deal's
`associations.companies`, its `associations.contacts`) against the deletion marks of the records it names, and
reads the link as HubSpot now shows it:

- a link to a deleted record is dropped; the rest of the record is read as it is;
- a single link left with no live record is empty, and the field's empty rule decides: `review` (a deal's
  `customer_id`) sends the record to review with the deleted record named, so a person links it to a live one at
  the source (no owner is guessed); `allow`/`default` keep it without a link (or with the default);
- a single link left with one live record is that record (two companies, one archived: the other is the client);
  with several, it stays ambiguous as before;
- a list (a deal's `contact_ids`) keeps its live members.

When the company is restored, its deletion mark goes and the same stored link counts again (`plan.py` builds
the deals naming it once more).

A record naming a record the raw tables do not hold at all keeps its link: it may be newer than the last sync
of the records it names. Records deleted themselves keep their links (their row is kept as history).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from integration_assets.canonical.validate import EMPTY, FieldValue, Problem, RecordRead, is_empty, remembered
from integration_assets.core.payload import resolve_path
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.mapping.schema import FieldDictionary, FieldSpec

__all__ = ["Link", "direct_links", "linked_refs", "unlinked"]

Stream = tuple[str, str]
AMBIGUOUS = ("ambiguous_owner", "ambiguous_reference")  # what `validate` says of a single link naming several


@dataclass(frozen=True)
class Link:
    """One field of an entity naming records of another stream of the same system by their id."""

    name: str
    spec: FieldSpec
    path: str
    target: Stream  # the stream holding the records it names


def direct_links(d: FieldDictionary, entity: str, stream: Stream) -> tuple[Link, ...]:
    """The fields of `entity` read from `stream` that name records of its own system directly: the referenced
    entity's canonical id is that system's record id (a CRM company id is the client's id), so no identity
    resolution stands between the link and the record it names."""
    return remembered(_LINKS, d, (entity, stream), lambda: tuple(_direct_links(d, entity, stream)))


_LINKS: dict[tuple, tuple[Any, Any]] = {}


def _direct_links(d: FieldDictionary, entity: str, stream: Stream) -> Iterable[Link]:
    system, object_type = stream
    for name, spec in d.entity(entity).fields.items():
        source = spec.sources.get(system)
        if not spec.references or source is None or source.object_type != object_type or not source.path:
            continue
        if source.id_system not in (None, system):
            continue
        referenced = d.entity(spec.references)
        key = referenced.key[0]
        target = referenced.field(key).sources.get(system)
        if referenced.record_ids.get(system) == key and target is not None and target.object_type:
            yield Link(name, spec, source.path, (system, target.object_type))


def _ids(payload: dict, path: str) -> list[str]:
    """The ids at a link's path as text (HubSpot sends them as strings, some answers as integers)."""
    found = resolve_path(payload, path)
    values = found if isinstance(found, list) else [found]
    return [str(value).strip() for value in values if not is_empty(value) and isinstance(value, str | int)]


def linked_refs(d: FieldDictionary, entity: str, stream: Stream, payload: dict) -> list[tuple[str, str, str]]:
    """The records a record's direct links name, as (system, object_type, id): a change of their deletion mark
    changes the record's canonical row (`plan.py` builds it again)."""
    return [(*link.target, rid) for link in direct_links(d, entity, stream) for rid in _ids(payload, link.path)]


def unlinked(
    d: FieldDictionary,
    entity: str,
    stream: Stream,
    payload: dict,
    read: RecordRead,
    deleted: Callable[[Stream], frozenset[str]],
) -> RecordRead:
    """The record's read with its links to deleted records (`deleted`: the ids deleted at the source in a
    stream) dropped; the read itself when it names none."""
    for link in direct_links(d, entity, stream):
        gone = deleted(link.target)
        if not gone:
            continue
        ids = _ids(payload, link.path)
        dropped = [rid for rid in dict.fromkeys(ids) if rid in gone]
        own = [p for p in read.problems if p.field == link.name]
        if not dropped or any(p.reason_code not in AMBIGUOUS for p in own):
            continue  # nothing deleted named, or the value failed its own rule: in review for that already
        live = [namespaced_id(stream[0], rid) for rid in dict.fromkeys(ids) if rid not in gone]
        value, problem = _judged(link, live, [namespaced_id(stream[0], rid) for rid in dropped])
        read.problems = [p for p in read.problems if p.field != link.name] + ([problem] if problem else [])
        read.values[link.name] = FieldValue(value, None)
    return read


def _judged(link: Link, live: list[str], dropped: list[str]) -> tuple[Any, Problem | None]:
    """The link's value from the live records it names, and the problem to review, if any."""
    name, spec = link.name, link.spec
    if spec.many:
        return (live or EMPTY), None
    if len(live) == 1:
        return live[0], None
    if live:
        reason = "ambiguous_owner" if spec.references == "customers" else "ambiguous_reference"
        detail = f"{name}: {len(live)} candidates ({', '.join(live)}) where exactly one is expected."
        return EMPTY, Problem(reason, name, detail)
    if spec.empty != "review":
        return EMPTY, None  # the merge applies the field's default, or leaves it empty
    kind = link.target[1]
    return EMPTY, Problem(
        "missing_required_field",
        name,
        f"{name}: the {kind} it names ({', '.join(dropped)}) are archived or deleted at the source; no live one is "
        "left to link to.",
    )
