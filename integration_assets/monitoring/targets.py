"""What the quality checks attach to: the nine raw streams and the canonical tables each asset writes."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey

from integration_assets.canonical.assets import SOURCE_KEYS
from integration_assets.canonical.build import RAW_TABLES

__all__ = ["CANONICAL_TABLES", "RAW_STREAMS", "RawStream"]


@dataclass(frozen=True)
class RawStream:
    system: str  # role: crm, billing, support
    object_type: str  # the vendor's object type (billing/payments reads Stripe `charges`)
    key: AssetKey
    table: str

    @property
    def name(self) -> str:
        return self.key.to_user_string()


RAW_STREAMS: tuple[RawStream, ...] = tuple(
    RawStream(system, object_type, AssetKey(key.split("/")), RAW_TABLES[(system, object_type)])
    for (system, object_type), key in SOURCE_KEYS.items()
)

# canonical asset (entity) -> the canonical tables it rebuilds, each validated by its own pandera model
CANONICAL_TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("customers", "contacts"),
    "deals": ("deals",),
    "invoices": ("invoices",),
    "payments": ("payments",),
    "tickets": ("tickets",),
}
