"""Dagster resources shared by every system: the warehouse, and what every vendor connection configures."""

from __future__ import annotations

import random

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from integration_assets.core.access import load_policy
from integration_assets.core.http import ApiClient, Credential, RetryPolicy, Timeouts, Vendor
from integration_assets.core.pacing import RequestBudget
from integration_assets.core.warehouse import Warehouse
from integration_assets.core.warehouse.handle import parse_warehouse_url


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

    def vendor(self) -> Vendor:
        raise NotImplementedError

    def credential(self) -> Credential:
        raise NotImplementedError

    def budget(self) -> RequestBudget:
        return RequestBudget(None)

    def client(self, connector: str, run_id: str = "", seed: int | None = None) -> ApiClient:
        """A fresh client for one step: its own session, budget and call log."""
        return ApiClient(
            self.vendor(),
            self.base_url,
            self.credential(),
            connector=connector,
            policy=load_policy(),
            budget=self.budget(),
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
