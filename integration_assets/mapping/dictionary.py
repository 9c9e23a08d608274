"""The shared field dictionary (`field_dictionary.yaml`, found by `core/config.py`): every canonical field's
sources, destinations, owner, format and rules for empty and conflicting values, the status/stage label maps and
the identity rules.

`load_dictionary()` validates the file at load. Besides the schema (`schema.py`: pydantic, extra keys forbidden)
it cross-checks the entries against each other and against the vendors' object types; every problem is reported
as `file:line: entry: message` in one `ConfigError`, the project's configuration error.

Paths into raw payloads are dotted (`properties.email`, `metadata.hubspot_company_id`); a segment ending in
`[]` walks every element of a list (`associations.companies.results[].id`, `domain_names[]`). `resolve_path`
reads one (`core/payload.py`), telling a missing key (`MISSING`) from a null value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from integration_assets.core.config import ConfigError, Problem, load_config, parse_yaml
from integration_assets.mapping.schema import (
    DESTINATION_PATTERN,
    FALLBACK_KEYS,
    HAS_UPDATED_AT,
    PATH_PATTERN,
    SYSTEM_OBJECT_TYPES,
    TIME_ENCODINGS,
    FieldDictionary,
    FieldSpec,
    Source,
)

__all__ = ["ConfigError", "load_dictionary", "parse_dictionary"]


def load_dictionary(path: str | Path | None = None) -> FieldDictionary:
    """The field dictionary in force (or the file at `path`), validated; read again when the file changes."""
    return load_config("field_dictionary.yaml", parse_dictionary, path)


def parse_dictionary(text: str, source: str = "<field dictionary>") -> FieldDictionary:
    """Parses and validates dictionary YAML; `source` names the text in error messages. Not cached.

    The shared loader (`core/config.py`) refuses syntax errors and duplicate keys, as for every file; the
    cross-checks run only on a dictionary that follows its schema."""
    return parse_yaml(text, FieldDictionary, source, check=_cross_check)


# ---------------------------------------------------------------------------------------- cross-checks


def _one_of(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _check_path(path: str, loc: tuple[Any, ...]) -> Iterator[Problem]:
    if not PATH_PATTERN.fullmatch(path):
        yield loc, f"{path!r} is not a dotted path (segments of letters, digits, _ $ -, optionally ending in [])"


def _check_system_object(system: str, object_type: str, loc: tuple[Any, ...]) -> Iterator[Problem]:
    if system not in SYSTEM_OBJECT_TYPES:
        yield loc, f"unknown system {system!r}; one of {_one_of(SYSTEM_OBJECT_TYPES)}"
    elif object_type not in SYSTEM_OBJECT_TYPES[system]:
        yield (
            loc,
            f"{system} has no object type {object_type!r}; one of {_one_of(SYSTEM_OBJECT_TYPES[system])}",
        )


def _cross_check(d: FieldDictionary) -> Iterator[Problem]:
    used_labels: set[str] = set()
    destinations: dict[str, str] = {}
    for name, entity in d.entities.items():
        eloc = ("entities", name)
        for position, key in enumerate(entity.key):
            if key not in entity.fields:
                yield (*eloc, "key", position), f"no field {key!r} in entity {name!r}"
        for system, field_name in entity.record_ids.items():
            rloc = (*eloc, "record_ids", system)
            if system not in SYSTEM_OBJECT_TYPES:
                yield rloc, f"unknown system {system!r}; one of {_one_of(SYSTEM_OBJECT_TYPES)}"
                continue
            spec = entity.fields.get(field_name)
            if spec is None:
                yield rloc, f"no field {field_name!r} in entity {name!r}"
            elif spec.type != "id" or (spec.source(system) is None or spec.sources[system].path != "id"):
                yield rloc, f"field {field_name!r} must be of type id with a {system} source at path 'id'"
        for field_name, spec in entity.fields.items():
            floc = (*eloc, "fields", field_name)
            yield from _check_field(d, name, field_name, spec, floc, used_labels)
            for index, destination in enumerate(spec.destinations):
                dloc = (*floc, "destinations", index)
                if destination in destinations:
                    yield dloc, f"destination {destination!r} is already written by {destinations[destination]}"
                    continue
                destinations[destination] = f"{name}.{field_name}"
            yield from _check_destinations(name, spec, floc)
    yield from _check_labels(d, used_labels)
    yield from _check_identity(d)


def _check_field(
    d: FieldDictionary, entity: str, name: str, spec: FieldSpec, loc: tuple[Any, ...], used_labels: set[str]
) -> Iterator[Problem]:
    if not spec.sources and spec.derived is None:
        yield loc, "needs sources, or derived (a value computed from other canonical fields)"
    # owner: the system of record, normally one the field is read from
    if spec.owner not in SYSTEM_OBJECT_TYPES:
        yield (*loc, "owner"), f"unknown system {spec.owner!r}; one of {_one_of(SYSTEM_OBJECT_TYPES)}"
    elif spec.owner not in spec.sources and not spec.owner_reason:
        yield (
            (*loc, "owner"),
            f"owner {spec.owner!r} is not one of the field's source systems ({_one_of(spec.sources) or 'none'}); "
            "add a source, or say why in owner_reason",
        )
    # empty rule and its default
    has_default = "default" in spec.model_fields_set
    if spec.empty == "default" and not has_default:
        yield (*loc, "empty"), "empty: default needs a default value"
    elif spec.empty != "default" and has_default:
        yield (*loc, "default"), f"a default is only used with empty: default (this field has empty: {spec.empty})"
    if spec.conflict == "newest_wins":
        stale = [s for s in spec.sources if s not in HAS_UPDATED_AT]
        if stale:
            yield (
                (*loc, "conflict"),
                f"newest_wins needs a last-modified time from every source; {_one_of(stale)} records have none",
            )
    fmt = spec.format
    if fmt is not None and fmt.min is not None and fmt.max is not None and fmt.min > fmt.max:
        yield (*loc, "format"), "min is greater than max"
    if spec.references is not None and spec.references not in d.entities:
        yield (*loc, "references"), f"no entity {spec.references!r}; one of {_one_of(d.entities)}"
    if spec.references is not None and spec.type != "id":
        yield (*loc, "references"), "only id fields reference another entity"
    if spec.derived is not None:
        for index, ref in enumerate(spec.derived.from_):
            ent, _, fld = ref.partition(".")
            if ent not in d.entities or fld not in d.entities[ent].fields:
                yield (*loc, "derived", "from", index), f"{ref!r} is not a canonical field (entity.field)"
    label_canonical: set[str] = set()
    for system, source in spec.sources.items():
        sloc = (*loc, "sources", system)
        if system not in SYSTEM_OBJECT_TYPES:
            yield sloc, f"unknown system {system!r}; one of {_one_of(SYSTEM_OBJECT_TYPES)}"
            continue
        yield from _check_system_object(system, source.object_type, (*sloc, "object_type"))
        yield from _check_source_shape(spec, source, sloc)
        # labels
        if spec.type == "label":
            if source.label is None:
                yield sloc, "a label field names its label map (label: system.object_type.field)"
            elif source.label not in d.labels:
                yield (*sloc, "label"), f"no label map {source.label!r}; label maps: {_one_of(d.labels) or 'none'}"
            else:
                used_labels.add(source.label)
                label_canonical.update(d.labels[source.label].canonical)
                if source.label.split(".", 2)[:2] != [system, source.object_type]:
                    yield (*sloc, "label"), f"label map {source.label!r} is not for {system}.{source.object_type}"
        elif source.label is not None:
            yield (*sloc, "label"), f"only label fields name a label map (this field is {spec.type})"
        # ids
        if source.id_system is not None:
            if spec.type != "id":
                yield (*sloc, "id_system"), "only id fields have an id_system"
            elif source.id_system not in SYSTEM_OBJECT_TYPES:
                yield (*sloc, "id_system"), f"unknown system {source.id_system!r}"
        if spec.references in d.entities:
            space = source.id_system or system
            if space not in d.entities[spec.references].record_ids:
                yield (
                    (*sloc, "id_system"),
                    f"entity {spec.references!r} has no record_ids entry for {space} ids, so this id cannot be "
                    "translated",
                )
        if any("[]" in p for p in source.paths) and spec.type == "money":
            yield sloc, "a money source reads one amount, not a list"
    if spec.type == "label":
        if not spec.sources:
            derived_labels = [r for r in (spec.derived.from_ if spec.derived else []) if _field_type(d, r) == "label"]
            if not derived_labels:
                yield loc, "a label field without sources derives from a label field (its vocabulary)"
        if has_default and spec.default is not None and label_canonical and spec.default not in label_canonical:
            yield (*loc, "default"), f"default {spec.default!r} is not a canonical label ({_one_of(label_canonical)})"
    elif has_default and spec.default is not None:
        yield from _check_default_type(spec, loc)


def _field_type(d: FieldDictionary, ref: str) -> str | None:
    ent, _, fld = ref.partition(".")
    spec = d.entities.get(ent)
    return spec.fields[fld].type if spec is not None and fld in spec.fields else None


def _check_default_type(spec: FieldSpec, loc: tuple[Any, ...]) -> Iterator[Problem]:
    value = spec.default
    expected = {
        "boolean": (bool,),
        "integer": (int,),
        "number": (int, float),
        "money": (int,),
    }.get(spec.type, (str,))
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        hint = "an integer in minor units" if spec.type == "money" else f"a {spec.type} value"
        yield (*loc, "default"), f"default {value!r} is not {hint}"


def _check_source_shape(spec: FieldSpec, source: Source, loc: tuple[Any, ...]) -> Iterator[Problem]:
    if spec.type == "money":
        for part in ("amount", "currency", "unit"):
            if getattr(source, part) is None:
                yield loc, f"a money source needs amount and currency paths and a unit (major|minor); {part} is missing"
        if source.path is not None:
            yield (*loc, "path"), "a money source gives amount and currency paths instead of path"
        if source.encoding not in (None, "decimal_string"):
            yield (*loc, "encoding"), "a money amount is a number or a decimal_string"
    else:
        if source.path is None:
            yield loc, "needs a path into the raw payload"
        for part in ("amount", "currency", "unit"):
            if getattr(source, part) is not None:
                yield (*loc, part), f"{part} is for money fields (this field is {spec.type})"
        if spec.type in ("instant", "date"):
            if source.encoding not in TIME_ENCODINGS:
                yield loc, f"a {spec.type} source names its encoding: one of {_one_of(TIME_ENCODINGS)}"
        elif source.encoding in TIME_ENCODINGS:
            yield (*loc, "encoding"), f"{source.encoding} is for instant and date fields"
        elif source.encoding == "decimal_string" and spec.type not in ("integer", "number"):
            yield (*loc, "encoding"), "decimal_string is for money and number fields"
    for part in ("path", "amount", "currency"):
        value = getattr(source, part)
        if value is not None:
            yield from _check_path(value, (*loc, part))
            if "[]" in value and not spec.many and spec.type not in ("id",):
                yield (*loc, part), "a [] path reads a list: only id fields (one expected) or many: true fields"


def _check_destinations(entity: str, spec: FieldSpec, loc: tuple[Any, ...]) -> Iterator[Problem]:
    canonical = 0
    for index, destination in enumerate(spec.destinations):
        dloc = (*loc, "destinations", index)
        found = DESTINATION_PATTERN.fullmatch(destination)
        if found is None:
            yield dloc, f"{destination!r} is not system.object_type.path (or canonical.table.column)"
            continue
        system, object_type, path = found["system"], found["object_type"], found["path"]
        if system == "canonical":
            canonical += 1
            if object_type != entity:
                yield dloc, f"a field of {entity!r} is written to canonical.{entity}, not canonical.{object_type}"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", path):
                yield dloc, f"canonical column {path!r} is not a snake_case name"
        else:
            yield from _check_system_object(system, object_type, dloc)
            yield from _check_path(path, dloc)
    if canonical != 1:
        yield (*loc, "destinations"), f"needs exactly one canonical.{entity}.<column> destination, found {canonical}"


def _check_labels(d: FieldDictionary, used: set[str]) -> Iterator[Problem]:
    for key, label in d.labels.items():
        loc = ("labels", key)
        parts = key.split(".", 2)
        if len(parts) != 3:
            yield loc, "a label map is named system.object_type.field"
        else:
            yield from _check_system_object(parts[0], parts[1], loc)
        if len(set(label.canonical)) != len(label.canonical):
            yield (*loc, "canonical"), "canonical labels are listed twice"
        for vendor_label, canonical in label.map.items():
            if not vendor_label.strip() or vendor_label.strip().lower() in FALLBACK_KEYS:
                yield (
                    (*loc, "map", vendor_label),
                    f"{vendor_label!r} looks like a fallback: an unknown label goes to review, never to a default",
                )
            elif canonical not in label.canonical:
                yield (
                    (*loc, "map", vendor_label),
                    f"{canonical!r} is not a canonical label of this map ({_one_of(label.canonical)})",
                )
        if key not in used:
            yield loc, "no field's source uses this label map"


def _check_identity(d: FieldDictionary) -> Iterator[Problem]:
    for name, identity in d.identity.items():
        loc = ("identity", name)
        if name not in d.entities:
            yield loc, f"no entity {name!r}; one of {_one_of(d.entities)}"
        codes = set(identity.review)
        target = identity.target
        yield from _check_system_object(target.system, target.object_type, (*loc, "target"))
        for part, value, allowed in (
            ("on_many", identity.on_many, set()),
            ("on_unmatched", identity.on_unmatched, {"accept"}),
        ):
            if value not in codes | allowed:
                yield (*loc, part), f"{value!r} is not one of {_one_of(codes | allowed)}"
        if identity.duplicates is not None:
            dloc = (*loc, "duplicates")
            if identity.duplicates.on_match not in codes:
                yield (*dloc, "on_match"), f"{identity.duplicates.on_match!r} is not one of {_one_of(codes)}"
            for index, field_name in enumerate(identity.duplicates.match_all):
                if name in d.entities and field_name not in d.entities[name].fields:
                    yield (*dloc, "match_all", index), f"no field {field_name!r} in entity {name!r}"
        names: set[str] = set()
        for index, step in enumerate(identity.steps):
            sloc = (*loc, "steps", index)
            if step.name in names:
                yield (*sloc, "name"), f"step {step.name!r} is listed twice"
            names.add(step.name)
            yield from _check_system_object(step.from_.system, step.from_.object_type, (*sloc, "from"))
            yield from _check_path(step.from_.path, (*sloc, "from", "path"))
            if step.where is not None:
                yield from _check_path(step.where.path, (*sloc, "where", "path"))
            object_type = step.match.object_type or target.object_type
            yield from _check_system_object(target.system, object_type, (*sloc, "match"))
            yield from _check_path(step.match.path, (*sloc, "match", "path"))
            yield from _check_path(step.match.yields, (*sloc, "match", "yields"))
            if step.on_no_match != "next" and step.on_no_match not in codes:
                yield (*sloc, "on_no_match"), f"{step.on_no_match!r} is not 'next' or one of {_one_of(codes)}"
