"""Fault profiles: what goes wrong, how often, reproducibly from a seed.

A profile is YAML (format in shared/design.md). The `default` block applies to every vendor; a vendor's own
block overrides it key by key (`rates` and `routes` entry by entry).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from integration_assets.core.config import load_yaml, parse_yaml

VENDORS = ("hubspot", "stripe", "zendesk")
FAULT_KINDS = ("429", "500", "502", "503", "timeout", "reset", "malformed")
FieldType = Literal["string", "integer", "number", "boolean", "array", "object", "null"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Rates(_Strict):
    """Probability of each injected fault, per request."""

    rate_429: float = Field(0.0, alias="429", ge=0, le=1)
    rate_500: float = Field(0.0, alias="500", ge=0, le=1)
    rate_502: float = Field(0.0, alias="502", ge=0, le=1)
    rate_503: float = Field(0.0, alias="503", ge=0, le=1)
    timeout: float = Field(0.0, ge=0, le=1)
    reset: float = Field(0.0, ge=0, le=1)
    malformed: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _status_keys_as_text(cls, data: Any) -> Any:
        # YAML reads `429:` as an integer key.
        return {str(k): v for k, v in data.items()} if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _at_most_certain(self) -> Rates:
        if sum(self.table().values()) > 1:
            raise ValueError("the fault rates add up to more than 1")
        return self

    def table(self) -> dict[str, float]:
        """The rates that were given, by fault kind."""
        names = dict(zip(type(self).model_fields, FAULT_KINDS, strict=True))
        return {names[n]: getattr(self, n) for n in self.model_fields_set}


class RateLimit(_Strict):
    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


class Writes(_Strict):
    apply_then_drop: float = Field(0.0, ge=0, le=1)


class Drift(_Strict):
    """How the vendor's record shape changes: applied to every record the vendor serves."""

    rename: dict[str, str] = {}
    remove: list[str] = []
    retype: dict[str, FieldType] = {}
    add: dict[str, Any] = {}


class RouteBlock(_Strict):
    rates: Rates | None = None
    latency_ms: tuple[int, int] | None = None
    rate_limit: RateLimit | None = None


class Credential(_Strict):
    """A credential the sandbox accepts besides the defaults: narrower, or expiring."""

    token: str
    email: str | None = None  # Zendesk: API tokens belong to a user
    scopes: list[str] | None = None  # HubSpot scopes; Stripe `resource:read|write`; None = everything
    role: Literal["admin", "agent", "end-user"] = "admin"  # Zendesk
    expires_in_s: float | None = None
    refresh_token: str | None = None  # HubSpot OAuth refresh token that mints tokens like this one


class VendorBlock(_Strict):
    latency_ms: tuple[int, int] | None = None
    rates: Rates | None = None
    rate_limit: RateLimit | None = None
    routes: dict[str, RouteBlock] | None = None
    writes: Writes | None = None
    drift: dict[str, Drift] | None = None
    token_ttl_s: float | None = None
    timeout_hold_s: float | None = None
    incremental_lag_s: float | None = None  # Zendesk leaves out changes younger than this
    search_lag_s: float | None = None  # Stripe search leaves out records created less than this long ago
    credentials: list[Credential] | None = None

    @field_validator("latency_ms")
    @classmethod
    def _ordered(cls, bounds: tuple[int, int] | None) -> tuple[int, int] | None:
        if bounds is not None and not 0 <= bounds[0] <= bounds[1]:
            raise ValueError("must be [min, max] with 0 <= min <= max")
        return bounds


class FaultProfile(_Strict):
    seed: int = 0
    default: VendorBlock = VendorBlock()
    hubspot: VendorBlock = VendorBlock()
    stripe: VendorBlock = VendorBlock()
    zendesk: VendorBlock = VendorBlock()

    def for_vendor(self, vendor: str) -> VendorSettings:
        return VendorSettings.merge(self.default, getattr(self, vendor))


def load_profile(path: str) -> FaultProfile:
    return load_yaml(path, FaultProfile)


def parse_profile(text: str, source: str = "fault profile") -> FaultProfile:
    return parse_yaml(text, FaultProfile, source)


@dataclass(frozen=True)
class VendorSettings:
    """One vendor's effective fault settings, after `default` and the vendor block are merged."""

    latency_ms: tuple[int, int] = (0, 0)
    rates: dict[str, float] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    routes: dict[str, RouteBlock] = field(default_factory=dict)
    apply_then_drop: float = 0.0
    drift: dict[str, Drift] = field(default_factory=dict)
    token_ttl_s: float | None = None
    timeout_hold_s: float = 3.0
    incremental_lag_s: float = 60.0
    search_lag_s: float = 0.0
    credentials: tuple[Credential, ...] = ()

    @property
    def injects(self) -> bool:
        """Whether any request can be faulted or delayed (if not, no dice are rolled)."""
        return bool(any(self.rates.values()) or self.latency_ms[1] or self.apply_then_drop or self.routes)

    @classmethod
    def merge(cls, default: VendorBlock, own: VendorBlock) -> VendorSettings:
        def pick(name: str, fallback: Any) -> Any:
            value = getattr(own, name)
            if value is None:
                value = getattr(default, name)
            return fallback if value is None else value

        writes = own.writes or default.writes or Writes()
        return cls(
            latency_ms=tuple(pick("latency_ms", (0, 0))),
            rates={
                **(default.rates.table() if default.rates else {}),
                **(own.rates.table() if own.rates else {}),
            },
            rate_limit=pick("rate_limit", None),
            routes={**(default.routes or {}), **(own.routes or {})},
            apply_then_drop=writes.apply_then_drop,
            drift={**(default.drift or {}), **(own.drift or {})},
            token_ttl_s=pick("token_ttl_s", None),
            timeout_hold_s=pick("timeout_hold_s", 3.0),
            incremental_lag_s=pick("incremental_lag_s", 60.0),
            search_lag_s=pick("search_lag_s", 0.0),
            credentials=tuple((default.credentials or []) + (own.credentials or [])),
        )


@dataclass(frozen=True)
class Decision:
    """What happens to one request: added latency, then an injected fault or none."""

    latency_s: float = 0.0
    fault: str | None = None  # one of FAULT_KINDS
    drop_after_write: bool = False


class FaultDice:
    """Draws per-request decisions from a seeded generator, so a sequence of requests replays exactly."""

    def __init__(self, seed: int, vendor: str) -> None:
        self._random = random.Random(f"{seed}:{vendor}")
        self._lock = threading.Lock()

    def roll(self, settings: VendorSettings, route: RouteBlock | None, is_write: bool) -> Decision:
        rates = route.rates.table() if route and route.rates is not None else settings.rates
        low, high = route.latency_ms if route and route.latency_ms else settings.latency_ms
        with self._lock:
            latency = self._random.uniform(low, high) / 1000 if high else 0.0
            draw = self._random.random()
            drop = self._random.random() < settings.apply_then_drop if is_write else False
        fault = None
        for kind in FAULT_KINDS:
            probability = rates.get(kind, 0.0)
            if draw < probability:
                fault = kind
                break
            draw -= probability
        return Decision(latency_s=latency, fault=fault, drop_after_write=drop)


def _retype(value: Any, kind: str) -> Any:
    if kind == "string":
        return None if value is None else str(value)
    if kind in ("integer", "number"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return 0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return bool(value)
    if kind == "array":
        return [] if value is None else [value]
    if kind == "object":
        return {"value": value}
    return None


def apply_drift(record: dict[str, Any], drift: Drift) -> dict[str, Any]:
    """Returns a drifted copy. Fields are looked up at the top level, then in `properties` (HubSpot)."""
    record = dict(record)
    target = record
    if isinstance(record.get("properties"), dict):
        record["properties"] = dict(record["properties"])

    def home(name: str) -> dict[str, Any]:
        if name in target:
            return target
        properties = record.get("properties")
        return properties if isinstance(properties, dict) and name in properties else target

    for old, new in drift.rename.items():
        where = home(old)
        if old in where:
            where[new] = where.pop(old)
    for name in drift.remove:
        home(name).pop(name, None)
    for name, kind in drift.retype.items():
        where = home(name)
        if name in where:
            where[name] = _retype(where[name], kind)
    properties = record.get("properties")
    for name, value in drift.add.items():
        (properties if isinstance(properties, dict) else record)[name] = value
    return record
