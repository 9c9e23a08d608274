"""Monitoring settings (`monitoring.yaml`, found by `core/config.py`), validated at load.

Several slices read it (monitoring's thresholds and sinks, reconciliation's grace period, the freshness
windows every slice attaches to its assets), so it lives below them all. Systems are named by role, whatever
roles the catalog holds: an owner or an expiry date for a role no system has is refused (`check_roles`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from integration_assets.core.config import ConfigError, config_path, load_config

__all__ = ["MonitoringConfig", "check_roles", "load_monitoring", "monitoring_path"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Owners(BaseModel):
    """`default`, and an owning team per system role (`crm: revenue-ops`)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, str | None]

    default: str

    def of(self, system: str | None) -> str:
        named = (self.__pydantic_extra__ or {}).get(system) if system else None
        return named or self.default


class Reconciliation(_Strict):
    won_deal_invoice_grace_days: float = Field(ge=0)
    sample_rows: int = Field(gt=0)
    listing_recount_hours: float = Field(24, ge=0)


class Drift(_Strict):
    history_runs: int = Field(ge=1)
    volume_drop_share: float = Field(gt=0, le=1)


class Freshness(_Strict):
    source_fail_minutes: int = Field(gt=0)
    source_warn_minutes: int = Field(gt=0)
    canonical_fail_minutes: int = Field(gt=0)
    canonical_warn_minutes: int = Field(gt=0)

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Freshness:
        for layer in ("source", "canonical"):
            if getattr(self, f"{layer}_warn_minutes") >= getattr(self, f"{layer}_fail_minutes"):
                raise ValueError(f"{layer}_warn_minutes must be below {layer}_fail_minutes (a warning comes first)")
        return self

    def windows(self, layer: str) -> tuple[int, int]:
        """(fail, warn) minutes of a layer: `source` or `canonical`."""
        return getattr(self, f"{layer}_fail_minutes"), getattr(self, f"{layer}_warn_minutes")


class Health(_Strict):
    window_minutes: int = Field(gt=0)
    min_calls: int = Field(ge=1)
    success_rate_min: float = Field(ge=0, le=1)
    p95_latency_ms_max: float = Field(gt=0)
    retry_share_max: float = Field(ge=0, le=1)
    rate_limited_share_max: float = Field(ge=0, le=1)
    down_after_failures: int = Field(ge=1)
    traffic_drop_share: float = Field(ge=0, le=1)


class Credentials(_Strict):
    warn_days: int = Field(ge=0)
    expires_on: dict[str, date] = Field(default_factory=dict)


class JsonLinesSink(_Strict):
    kind: Literal["jsonl"]
    path: str


class WebhookSink(_Strict):
    kind: Literal["webhook"]
    url: str | None = None
    url_env: str | None = None
    format: Literal["json", "slack"] = "json"

    def resolved_url(self) -> str | None:
        return self.url or (os.environ.get(self.url_env) if self.url_env else None) or None


class Alerts(_Strict):
    sinks: list[Annotated[JsonLinesSink | WebhookSink, Field(discriminator="kind")]]
    delivery_attempts: int = Field(ge=1)
    delivery_timeout_seconds: float = Field(gt=0)
    # bound on one sensor tick's delivery, all sinks together: well inside Dagster's 60 s sensor timeout
    delivery_deadline_seconds: float = Field(default=40, gt=0, le=50)
    # hosts a webhook may post to ("hooks.slack.com", or "*.example.com" for its subdomains); loopback always may
    webhook_hosts: list[str] = Field(default_factory=list)


class Pools(_Strict):
    # a run waiting longer than this for a slot of a vendor's concurrency pool raises an alert (monitoring/pools.py)
    blocked_alert_minutes: float = Field(default=30, gt=0)


class MonitoringConfig(_Strict):
    owners: Owners
    reconciliation: Reconciliation
    drift: Drift
    freshness: Freshness
    health: Health
    credentials: Credentials
    alerts: Alerts
    # added after the first release: a copy made before it keeps working, with the default
    pools: Pools = Field(default_factory=Pools)


def monitoring_path() -> Path:
    """The monitoring.yaml in force: the operator's (INTEGRATION_CONFIG_DIR) or the packaged one."""
    return config_path("monitoring.yaml")


def check_roles(config: MonitoringConfig, roles: Iterable[str]) -> MonitoringConfig:
    """The config, once every system it names is one of `roles`: a mistyped role is refused, not ignored."""
    named = {  # the entries that name systems: owners and credential expiry
        "owners": set(config.owners.__pydantic_extra__ or {}),
        "credentials.expires_on": set(config.credentials.expires_on),
    }
    wrong = {entry: sorted(found - set(roles)) for entry, found in named.items() if found - set(roles)}
    if wrong:
        listed = "; ".join(f"{entry}: unknown system {', '.join(found)}" for entry, found in wrong.items())
        raise ConfigError(f"{monitoring_path()}: {listed}; one of {', '.join(roles)}")
    return config


def load_monitoring(path: str | Path | None = None) -> MonitoringConfig:
    """Reads the file again when it changed, so an edited threshold applies from the next tick."""
    return load_config("monitoring.yaml", MonitoringConfig, path)
