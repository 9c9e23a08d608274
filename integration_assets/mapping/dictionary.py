"""The shared field dictionary (`data/field_dictionary.yaml`): every canonical field's sources, destinations,
owner, format and rules for empty and conflicting values, the status/stage label maps and the identity rules.

`load_dictionary()` validates the file at load. Besides the schema (pydantic, extra keys forbidden) it
cross-checks the entries against each other and against the vendors' object types; every problem is reported
as `file:line: entry: message` in one `ConfigError`, the project's configuration error.

Paths into raw payloads are dotted (`properties.email`, `metadata.hubspot_company_id`); a segment ending in
`[]` walks every element of a list (`associations.companies.results[].id`, `domain_names[]`). `resolve_path`
reads one, telling a missing key (`MISSING`) from a null value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from integration_assets.core.config import ConfigError, describe

__all__ = [
    "DATA",
    "DEFAULT_PATH",
    "MISSING",
    "SYSTEM_OBJECT_TYPES",
    "VENDORS",
    "ConfigError",
    "Entity",
    "FieldDictionary",
    "FieldSource",
    "FieldSpec",
    "Identity",
    "LabelMap",
    "Source",
    "load_dictionary",
    "parse_dictionary",
    "resolve_path",
]

DATA = Path(__file__).resolve().parent.parent.parent / "data"
DEFAULT_PATH = DATA / "field_dictionary.yaml"

# The vendor object types each system role is read from (as the connectors' streams and the sandbox name them).
SYSTEM_OBJECT_TYPES: dict[str, tuple[str, ...]] = {
    "crm": ("companies", "contacts", "deals"),
    "billing": ("customers", "invoices", "charges"),
    "support": ("organizations", "users", "tickets"),
}
VENDORS = {"crm": "HubSpot", "billing": "Stripe", "support": "Zendesk"}

FieldType = Literal[
    "string", "email", "phone", "instant", "date", "money", "currency", "integer", "number", "boolean", "label", "id"
]
EmptyRule = Literal["reject", "review", "default", "allow"]
ConflictRule = Literal["owner_wins", "newest_wins", "review"]
Encoding = Literal["iso8601", "epoch_s", "epoch_ms", "decimal_string"]
NormalizeOp = Literal["trim", "lowercase", "email_domain", "strip_www", "strip_trailing_dot"]
TIME_ENCODINGS = frozenset({"iso8601", "epoch_s", "epoch_ms"})
# Systems whose records carry a last-modified time (Stripe objects have none, only `created`).
HAS_UPDATED_AT = frozenset({"crm", "support"})
# Keys that would turn a label map into a guess: an unknown label goes to review, never to a default.
FALLBACK_KEYS = frozenset(
    {"default", "fallback", "*", "_", "__default__", "__fallback__", "else", "otherwise", "unmapped", "unknown"}
)

_SEGMENT = r"[A-Za-z0-9_$-]+(?:\[\])?"
PATH_PATTERN = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: same result, faster
_DESTINATION = re.compile(r"(?P<system>[a-z_]+)\.(?P<object_type>[a-z_0-9]+)\.(?P<path>.+)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


# ----------------------------------------------------------------------------------------------- models


class Format(_Strict):
    """What a valid canonical value looks like (after its type's normalizer)."""

    pattern: str | None = None
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(None, ge=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return value


class Source(_Strict):
    """Where one system's raw payload holds the field (paths are relative to the payload's root)."""

    object_type: str
    path: str | None = None
    amount: str | None = None  # money only: the amount's path
    currency: str | None = None  # money only: the currency's path
    unit: Literal["major", "minor"] | None = None  # money only
    encoding: Encoding | None = None
    label: str | None = None  # label fields: the label map translating this source's values
    id_system: str | None = None  # id fields: whose id this is when not this system's own (Stripe metadata)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.path, self.amount, self.currency) if p is not None)


class Derived(_Strict):
    """A value computed from other canonical fields (`entity.field`)."""

    from_: list[str] = Field(alias="from", min_length=1)
    rule: str = Field(min_length=1)


class FieldSpec(_Strict):
    type: FieldType
    description: str = Field(min_length=1)
    sources: dict[str, Source] = {}
    derived: Derived | None = None
    destinations: list[str] = Field(min_length=1)
    owner: str
    owner_reason: str | None = None
    format: Format | None = None
    empty: EmptyRule
    default: Any = None
    conflict: ConflictRule
    pii: bool
    references: str | None = None  # id fields: the entity whose record this id points at
    many: bool = False  # a `[]` path keeps every value (a list); otherwise exactly one distinct value is expected
    note: str | None = None

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(self.sources)

    def source(self, system: str) -> Source | None:
        return self.sources.get(system)


class Entity(_Strict):
    description: str = Field(min_length=1)
    key: list[str] = Field(min_length=1)  # a row is identified by the first non-empty of these fields
    record_ids: dict[str, str]  # system -> the field holding that system's own id of this entity's record
    fields: dict[str, FieldSpec] = Field(min_length=1)

    def field(self, name: str) -> FieldSpec:
        try:
            return self.fields[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields: {', '.join(self.fields)}") from None


class LabelMap(_Strict):
    description: str = Field(min_length=1)
    canonical: list[str] = Field(min_length=1)
    map: dict[str, str] = Field(min_length=1)

    def translate(self, value: str) -> str | None:
        """The canonical label, or None when the vendor label is unknown (the record then goes to review)."""
        return self.map.get(value)


class RecordRef(_Strict):
    system: str
    object_type: str
    path: str


class Where(_Strict):
    path: str
    in_: list[str] = Field(alias="in", min_length=1)


class MatchTarget(_Strict):
    object_type: str | None = None  # default: the identity's target object type
    path: str
    yields: str = "id"  # the path, in the matched record, of the target record's id


class IdentityStep(_Strict):
    name: str
    method: Literal["explicit_id", "email", "email_domain", "domain"]
    from_: RecordRef = Field(alias="from")
    where: Where | None = None
    match: MatchTarget
    normalize: list[NormalizeOp] = []
    on_no_match: str  # "next", or the review reason code for a present value that matches nothing


class Target(_Strict):
    system: str
    object_type: str


class Duplicates(_Strict):
    match_all: list[str] = Field(min_length=1)  # canonical fields of the entity, compared normalized
    on_match: str  # review reason code


class Identity(_Strict):
    description: str = Field(min_length=1)
    target: Target
    include_archived: bool = False
    steps: list[IdentityStep] = Field(min_length=1)
    ignore_domains: list[str] = []
    on_many: str  # review reason code
    on_unmatched: str  # "accept", or a review reason code
    duplicates: Duplicates | None = None
    review: dict[str, str] = Field(min_length=1)  # reason code -> what it means


@dataclass(frozen=True)
class FieldSource:
    """One canonical field fed by one raw object: what `fields_from` answers."""

    entity: str
    field: str
    spec: FieldSpec
    source: Source

    @property
    def paths(self) -> tuple[str, ...]:
        return self.source.paths


class FieldDictionary(_Strict):
    version: Literal[1]
    entities: dict[str, Entity] = Field(min_length=1)
    labels: dict[str, LabelMap] = {}
    identity: dict[str, Identity] = {}

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name]
        except KeyError:
            raise KeyError(f"no entity {name!r}; entities: {', '.join(self.entities)}") from None

    def fields_from(self, system: str, object_type: str) -> list[FieldSource]:
        """The canonical fields read from one raw object, with their paths, in dictionary order."""
        return [
            FieldSource(entity_name, field_name, spec, source)
            for entity_name, entity in self.entities.items()
            for field_name, spec in entity.fields.items()
            for source_system, source in spec.sources.items()
            if source_system == system and source.object_type == object_type
        ]

    def label_map(self, system: str, object_type: str, field: str) -> LabelMap:
        """The label map for `system.object_type.field`; `field` may also be the source path (properties.dealstage)."""
        key = f"{system}.{object_type}.{field}"
        if key in self.labels:
            return self.labels[key]
        for found in self.fields_from(system, object_type):
            if found.source.label and found.source.path == field:
                return self.labels[found.source.label]
        raise KeyError(f"no label map for {key}; label maps: {', '.join(self.labels)}")

    def pii_fields(self, entity: str) -> tuple[str, ...]:
        return tuple(name for name, spec in self.entity(entity).fields.items() if spec.pii)

    def is_pii(self, entity: str, field: str) -> bool:
        return self.entity(entity).field(field).pii


# -------------------------------------------------------------------------------------------- raw paths


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def resolve_path(record: Any, path: str) -> Any:
    """The value at a dotted path: None when a step on the way is null, `MISSING` when a key is absent.

    A segment `name[]` maps the rest of the path over the list at `name` and returns a list (elements whose
    rest is missing make the whole answer `MISSING`, so a drifted shape is never read as "no value").
    """
    head, _, rest = path.partition(".")
    if record is None:
        return None
    if not isinstance(record, dict):
        return MISSING
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if key not in record:
        return MISSING
    value = record[key]
    if many:
        if value is None:
            return None
        if not isinstance(value, list):
            return MISSING
        if not rest:
            return list(value)
        found = [resolve_path(item, rest) for item in value]
        return MISSING if any(v is MISSING for v in found) else found
    return resolve_path(value, rest) if rest else value


# -------------------------------------------------------------------------------------------- loading


@cache
def load_dictionary(path: str | Path | None = None) -> FieldDictionary:
    """The field dictionary at `path` (default `data/field_dictionary.yaml`), validated; cached per path."""
    source = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None
    return parse_dictionary(text, str(source))


def parse_dictionary(text: str, source: str = "<field dictionary>") -> FieldDictionary:
    """Parses and validates dictionary YAML; `source` names the text in error messages. Not cached."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()  # one parse: the node tree gives the lines and the data
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(_syntax_error(exc, text, source)) from None
    finally:
        loader.dispose()
    problems = list(_duplicate_keys(root, ()))
    if not problems:
        try:
            dictionary = FieldDictionary.model_validate(data if data is not None else {})
        except pydantic.ValidationError as exc:
            problems = [(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        else:
            problems = list(_cross_check(dictionary))
    if problems:
        raise ConfigError("\n".join(describe(root, loc, msg, source) for loc, msg in problems))
    return dictionary


def _syntax_error(exc: yaml.YAMLError, text: str, source: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return f"{source}: (document): not valid YAML: {exc}"
    line = mark.line + 1
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line + 1 != line:
        context = f"{context} (started at line {context_mark.line + 1})"
    message = " ".join(str(part) for part in (context, problem) if part) or str(exc)
    return f"{source}:{line}: {_entry_at(text, line)}: not valid YAML: {message}"


def _entry_at(text: str, line: int) -> str:
    """The dotted key path of the last mapping key at or before `line` (best effort, by indentation)."""
    stack: list[tuple[int, str]] = []
    key = re.compile(r"^(\s*)(?:-\s+)?([^\s#:'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s|$)")
    for number, content in enumerate(text.splitlines()[:line], start=1):
        found = key.match(content)
        if not found or number > line:
            continue
        indent = len(found.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, found.group(2).strip("'\"")))
    return ".".join(name for _, name in stack) or "(top level)"


def _duplicate_keys(node: yaml.Node | None, location: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """YAML silently keeps the last of two equal keys; in a dictionary that would drop a field unseen."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in seen:
                yield (*location, _KeyLine(key_node.start_mark.line + 1, name)), f"duplicate key {name!r}"
            seen.add(name)
            yield from _duplicate_keys(value_node, (*location, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*location, index))


@dataclass(frozen=True)
class _KeyLine:
    """A location step that already knows its line (a duplicate key cannot be found by name)."""

    line: int
    name: str

    def __str__(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------- cross-checks

Problem = tuple[tuple[Any, ...], str]


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
        found = _DESTINATION.fullmatch(destination)
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
