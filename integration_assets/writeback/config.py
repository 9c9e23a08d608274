"""Write-back settings (`data/writeback.yaml`, or the file WRITEBACK_CONFIG names), validated at load."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from integration_assets.core.config import load_yaml

__all__ = ["Behaviour", "FlowSettings", "WritebackConfig", "load_writeback"]

DATA = Path(__file__).resolve().parent.parent.parent / "data"


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


def writeback_path() -> Path:
    return Path(os.environ.get("WRITEBACK_CONFIG") or DATA / "writeback.yaml")


@cache
def _load(path: str) -> WritebackConfig:
    return load_yaml(path, WritebackConfig)


def load_writeback(path: str | Path | None = None) -> WritebackConfig:
    return _load(str(path or writeback_path()))
