"""Write-back settings (`writeback.yaml`, found by `core/config.py`), validated at load."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from integration_assets.core.config import load_config

__all__ = ["Behaviour", "FlowSettings", "WritebackConfig", "load_writeback"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Behaviour(StrEnum):
    CREATE_ONLY = "create_only"
    UPDATE_ONLY = "update_only"
    UPSERT = "upsert"

    def allows(self, operation: str) -> bool:
        """Whether a planned `create` or `update` may be sent under this behaviour."""
        return self == Behaviour.UPSERT or self.value.startswith(operation)


class CircuitBreakerSettings(_Strict):
    failures_to_open: int = Field(ge=1)


class OutboxSettings(_Strict):
    retry_base_seconds: float = Field(gt=0)
    retry_cap_seconds: float = Field(gt=0)


class InvoiceSettings(_Strict):
    finalize: bool = True
    days_until_due: int = Field(30, ge=0, le=730)  # Stripe's own bounds


class FlowSettings(_Strict):
    behaviour: Behaviour
    dry_run: bool = False
    connector: str = Field(min_length=1)
    invoice: InvoiceSettings | None = None


class Flows(_Strict):
    crm_to_billing: FlowSettings
    billing_to_crm: FlowSettings
    crm_to_support: FlowSettings


class WritebackConfig(_Strict):
    circuit_breaker: CircuitBreakerSettings
    outbox: OutboxSettings
    flows: Flows

    def flow(self, name: str) -> FlowSettings:
        return getattr(self.flows, name)


def load_writeback(path: str | Path | None = None) -> WritebackConfig:
    """The write-back settings in force (`path` for a test's own file); read again when the file changes."""
    return load_config("writeback.yaml", WritebackConfig, path)
