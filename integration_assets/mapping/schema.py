"""The field dictionary's schema: what `field_dictionary.yaml` may say, as pydantic models (extra keys
forbidden), with the vocabularies its entries use (field types, empty and conflict rules, encodings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integration_assets.systems import CATALOG

__all__ = [
    "SYSTEM_OBJECT_TYPES",
    "VENDORS",
    "Entity",
    "FieldDictionary",
    "FieldSource",
    "FieldSpec",
    "Identity",
    "IdentityStep",
    "LabelMap",
    "Source",
]


# The vendor object types each system role is read from, and the vendors' names: queries on the catalog.
SYSTEM_OBJECT_TYPES: dict[str, tuple[str, ...]] = CATALOG.object_types()
VENDORS = {system.role: system.title for system in CATALOG.systems}

FieldType = Literal[
    "string", "email", "phone", "instant", "date", "money", "currency", "integer", "number", "boolean", "label", "id"
]
EmptyRule = Literal["reject", "review", "default", "allow"]
ConflictRule = Literal["owner_wins", "newest_wins", "review"]
Encoding = Literal["iso8601", "epoch_s", "epoch_ms", "decimal_string"]
NormalizeOp = Literal["trim", "lowercase", "email_domain", "strip_www", "strip_trailing_dot"]
TIME_ENCODINGS = frozenset({"iso8601", "epoch_s", "epoch_ms"})
# Systems whose records carry a last-modified time (Stripe objects have none, only `created`).
HAS_UPDATED_AT = frozenset(system.role for system in CATALOG.systems if system.has_updated_at)
# Keys that would turn a label map into a guess: an unknown label goes to review, never to a default.
FALLBACK_KEYS = frozenset(
    {"default", "fallback", "*", "_", "__default__", "__fallback__", "else", "otherwise", "unmapped", "unknown"}
)

_SEGMENT = r"[A-Za-z0-9_$-]+(?:\[\])?"
PATH_PATTERN = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
DESTINATION_PATTERN = re.compile(r"(?P<system>[a-z_]+)\.(?P<object_type>[a-z_0-9]+)\.(?P<path>.+)")


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
