"""Dagster resources shared by every system: the warehouse, and what every vendor connection configures."""

from __future__ import annotations

import os
import random

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field

from integration_assets.core.access import load_policy
from integration_assets.core.http import ApiClient, Credential, RetryPolicy, Timeouts, Vendor
from integration_assets.core.pacing import Budget, RequestBudget
from integration_assets.core.shared_pacing import (
    DEFAULT_PREFIX,
    REDIS_URL_VARIABLE,
    SharedRequestBudget,
    account_fingerprint,
)
from integration_assets.core.warehouse import Warehouse
from integration_assets.core.warehouse.handle import parse_warehouse_url


def redis_url_setting() -> EnvVar | None:
    """`INTEGRATION_REDIS_URL` through EnvVar when the environment sets it (its value never reaches the UI or a
    log), else None: EnvVar fails a run whose variable is unset, and the shared budget is optional."""
    return EnvVar(REDIS_URL_VARIABLE) if os.environ.get(REDIS_URL_VARIABLE) else None


class WarehouseResource(ConfigurableResource):
    """DuckDB file path (the default) or a `postgresql://` URL; the tables are the same on both."""

    url: str = Field(
        description="WAREHOUSE_URL: a DuckDB file path (or duckdb:///path), or postgresql://… (postgres://…, "
        "postgresql+psycopg2://…); anything else is refused when the resource starts"
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Refuses a malformed WAREHOUSE_URL before any step runs: read loosely, a mistyped PostgreSQL URL
        became a new local DuckDB file, and runs "succeeded" there while the real warehouse went stale."""
        parse_warehouse_url(self.url)

    def open(self) -> Warehouse:
        warehouse = Warehouse.from_url(self.url)
        with warehouse.held():  # one connection for the few statements
            warehouse.ensure_ops_tables()
        return warehouse


class VendorConnection(ConfigurableResource):
    """Settings every vendor connection has; each system adds its base URL and credential."""

    base_url: str
    max_attempts: int = Field(6, description="attempts per call, the first included, for retryable failures")
    max_total_s: float = Field(180.0, description="give up retrying a call after this long")
    backoff_base_s: float = Field(0.2, description="first backoff step; doubles per attempt, full jitter")
    backoff_cap_s: float = Field(20.0, description="longest backoff step")
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    rate_budget_redis_url: str | None = Field(
        None,
        description=f"{REDIS_URL_VARIABLE}: when set, each vendor account's request budget is kept in this Redis and "
        "shared by every worker and run (redis://[:password@]host:port/db); unset: each step paces on its own",
    )
    rate_budget_prefix: str = Field(
        DEFAULT_PREFIX, description="the Redis keys' prefix: deployments sharing one Redis keep apart by it"
    )

    def vendor(self) -> Vendor:
        raise NotImplementedError

    def credential(self) -> Credential:
        raise NotImplementedError

    def pacing(self) -> tuple[int | None, float]:
        """The configured request limit and its window in seconds (None: learnt from the vendor's headers)."""
        return None, 1.0

    def budget_identity(self, connector: str) -> tuple[str, ...]:
        """What tells one account's budget from another's for `connector` (hashed before it is used); by
        default the base URL, for a vendor that limits per account host."""
        return (self.base_url,)

    def budget(self, connector: str) -> Budget:
        """The account's budget in Redis when a Redis URL is set, so every worker draws from one; else this
        step's own."""
        limit, window_s = self.pacing()
        if not self.rate_budget_redis_url:
            return RequestBudget(limit, window_s)
        vendor = self.vendor()
        return SharedRequestBudget(
            self.rate_budget_redis_url,
            vendor=vendor.name,
            system=vendor.system,
            account=account_fingerprint(vendor.name, self.base_url, *self.budget_identity(connector)),
            limit=limit,
            window_s=window_s,
            prefix=self.rate_budget_prefix,
        )

    def client(self, connector: str, run_id: str = "", seed: int | None = None) -> ApiClient:
        """A fresh client for one step: its own session, budget and call log."""
        return ApiClient(
            self.vendor(),
            self.base_url,
            self.credential(),
            connector=connector,
            policy=load_policy(),
            budget=self.budget(connector),
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                base_delay_s=self.backoff_base_s,
                max_delay_s=self.backoff_cap_s,
                max_total_s=self.max_total_s,
            ),
            timeouts=Timeouts(self.connect_timeout_s, self.read_timeout_s),
            run_id=run_id,
            rng=random.Random(seed) if seed is not None else None,
        )
