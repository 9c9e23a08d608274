"""Adding a stream is one declaration: a tenth stream in the catalog becomes an asset with its raw table, its
checks, a step of the sync job, and a member of its system's health, with no other module edited."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from dagster import AssetCheckKey, AssetKey, DagsterInstance, build_sensor_context

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.config import ConfigError, default_path
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.definitions import build_definitions
from integration_assets.monitoring.drift import promised_fields
from integration_assets.monitoring.health import last_successful_syncs
from integration_assets.monitoring.sensors import sensors
from integration_assets.systems import CATALOG
from integration_assets.systems.billing.streams import StripeStream
from integration_assets_tests.testing.sync import sandbox_env
from integration_sandbox.server import Sandbox

INVOICE_ITEMS = StreamSpec(
    role="billing",
    vendor="stripe",
    object_type="invoiceitems",
    name="invoice_items",
    description="Stripe invoice items: the lines waiting for the customer's next invoice.",
    reader=StripeStream("invoiceitems", "invoiceitem"),
)
KEY = AssetKey(["billing", "invoice_items"])
TEN = CATALOG.with_streams(INVOICE_ITEMS)


def test_a_tenth_stream_is_an_asset_with_its_checks_in_the_sync_job() -> None:
    assert len(TEN.streams) == 10 and TEN.stream("billing/invoice_items").raw_table == "raw.billing_invoice_items"
    defs = build_definitions(TEN)
    graph = defs.resolve_asset_graph()
    assert KEY in graph.get_all_asset_keys()
    on_it = {key.name for key in graph.asset_check_keys if key.asset_key == KEY}
    assert on_it == {"complete_against_vendor", "volume"}  # no contract declared: none checked
    node = graph.get(KEY)  # what the UI shows of it comes from the catalog too
    assert node.metadata["dagster/table_name"] == "raw.billing_invoice_items" and node.group_name == "billing"
    assert node.owners == ["team:finance-operations"] and "stripe" in node.kinds
    sync = defs.resolve_job_def("integration_sync").asset_layer.asset_graph
    assert KEY in sync.executable_asset_keys
    assert AssetCheckKey(KEY, "complete_against_vendor") in sync.asset_check_keys
    assert KEY not in build_definitions(CATALOG).resolve_asset_graph().get_all_asset_keys()


@pytest.fixture
def reads_invoice_items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream's YAML entry: the billing source connector may read invoice items (an operator's override)."""
    policy = yaml.safe_load(default_path("access_policy.yaml").read_text())
    policy["connectors"]["billing_source"]["allow"]["invoiceitems"] = ["read"]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "access_policy.yaml").write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(tmp_path / "config"))


def test_a_tenth_stream_lands_in_its_raw_table_counted_complete_and_in_health(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads_invoice_items: None
) -> None:
    stripe = sandbox.url("stripe")
    customer = requests.get(f"{stripe}/__sandbox__/records/customers", timeout=30).json()[0]["id"]
    requests.post(
        f"{stripe}/v1/invoiceitems",
        data={"customer": customer, "amount": 1250, "currency": "eur", "description": "setup fee"},
        headers={"Authorization": "Bearer sk_test_sandbox"},
        timeout=10,
    ).raise_for_status()
    url = str(tmp_path / "warehouse.duckdb")
    for name, value in sandbox_env(sandbox, url).items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(TEN)
    with DagsterInstance.ephemeral() as instance:
        nine = defs.resolve_job_def("integration_sync")
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[s.asset_key for s in CATALOG.streams]
        )
        assert result.success
        assert last_successful_syncs(instance, TEN)["billing"] is None  # the tenth has not synced yet
        assert last_successful_syncs(instance, CATALOG)["billing"] is not None
        result = nine.execute_in_process(instance=instance, asset_selection=[KEY])
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert last_successful_syncs(instance, TEN)["billing"] is not None
    rows = Warehouse.from_url(url).raw_records("raw.billing_invoice_items")
    assert [row["payload"]["description"] for row in rows.values()] == ["setup fee"]
    assert checks.get("complete_against_vendor") is True


def test_monitoring_settings_for_a_system_the_catalog_lacks_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owners are named by role: a mistyped role would silently never be used, so loading refuses it."""
    settings = yaml.safe_load(default_path("monitoring.yaml").read_text())
    settings["owners"]["crn"] = settings["owners"].pop("crm")
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"monitoring.yaml: owners: unknown system crn; one of crm, billing, support"):
        build_definitions(CATALOG)


def test_a_stream_of_a_role_no_system_has_is_refused() -> None:
    ledger = replace(INVOICE_ITEMS, role="accounting", vendor="quickbooks")
    with pytest.raises(ValueError, match=r"accounting/invoice_items: no system has that role"):
        CATALOG.with_streams(ledger)


def test_the_slices_read_a_stream_s_contract_from_the_catalog_they_are_given() -> None:
    """A stream declaring a contract gets its contract and drift checks from its own declaration."""
    contracted = replace(
        INVOICE_ITEMS,
        contract=CATALOG.stream("billing/invoices").contract,
        contract_columns=CATALOG.stream("billing/invoices").contract_columns,
    )
    graph = build_definitions(CATALOG.with_streams(contracted)).resolve_asset_graph()
    on_it = {key.name for key in graph.asset_check_keys if key.asset_key == KEY}
    assert {"contract", "drift", "volume", "complete_against_vendor"} <= on_it
    assert promised_fields(contracted) == promised_fields(CATALOG.stream("billing/invoices"))


def test_a_mistyped_role_added_later_is_refused_by_the_alert_sensors_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code location refuses it at load; a sensor tick that reads the edited file refuses it the same way."""
    settings = yaml.safe_load(default_path("monitoring.yaml").read_text())
    settings["credentials"]["expires_on"] = {"suport": "2027-01-01"}
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(tmp_path))
    sensor = next(s for s in sensors if s.name == "drift_alerts")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"warehouse": WarehouseResource(url=str(tmp_path / "w.duckdb"))}
        )
        with pytest.raises(ConfigError, match=r"credentials\.expires_on: unknown system suport"):
            sensor(context)
