"""What the Dagster UI shows after the demo, read as the UI reads it: the webserver's GraphQL API.

The quickstart runs the demo dataset (its planted defects included) into a fresh instance and warehouse; a
real `dagster-webserver` then serves that instance on a free port, and each test asks it what a user would
look at: the columns and owners of the assets, the records a failed reconciliation check names, the open
alerts, and how many checks a reconciliation run failed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets_tests.testing import PROJECT

WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
FAILED_CHECKS_TAG = "integration/failed_checks"

ASSETS_QUERY = """{
  assetNodes {
    assetKey { path }
    groupName
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
      ... on TextMetadataEntry { text }
    }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          jobNames
          canExecuteIndividually
          executionForLatestMaterialization {
            runId
            status
            evaluation {
              success
              metadataEntries {
                label
                ... on TableMetadataEntry { table { records schema { columns { name type } } } }
                ... on IntMetadataEntry { intValue }
                ... on TextMetadataEntry { text }
              }
            }
          }
        }
      }
    }
  }
}"""

ALERTS_QUERY = """{
  assetOrError(assetKey: {path: ["ops", "alerts"]}) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        metadataEntries {
          label
          ... on TableMetadataEntry { table { records schema { columns { name type } } } }
          ... on IntMetadataEntry { intValue }
        }
      }
    }
  }
}"""

RUNS_QUERY = """{
  runsOrError(filter: {pipelineName: "reconciliation"}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class UI:
    """The webserver's GraphQL endpoint."""

    def __init__(self, url: str, env: dict[str, str], manifest: dict[str, Any]) -> None:
        self.url, self.env, self.manifest = url, env, manifest

    def query(self, text: str) -> dict[str, Any]:
        answer = requests.post(self.url, json={"query": text}, timeout=120).json()
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """The demo dataset run by the quickstart, then served by dagster-webserver from the same instance."""
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "config").mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp / "home"),
        "WAREHOUSE_URL": str(tmp / "warehouse.duckdb"),
        "INTEGRATION_CONFIG_DIR": str(tmp / "config"),
    }
    env.pop("DAGSTER_PG_HOST", None)
    command = [sys.executable, "-m", "integration_assets.quickstart", "--data", str(tmp / "data")]
    command += ["--dotenv", str(tmp / ".env")]  # the demo dataset: the quickstart's own seed, scale and defects
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # quiet on the demo dataset: Dagster's own logs go to a file, the terminal gets the report
    assert len((done.stdout + done.stderr).splitlines()) <= 60, done.stdout + done.stderr
    manifest = json.loads((tmp / "data" / "manifest.json").read_text())
    port = _free_port()
    server = subprocess.Popen(
        [WEBSERVER, "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    probe = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    try:
        deadline, loaded = time.monotonic() + 180, False
        while time.monotonic() < deadline and not loaded:
            try:
                entries = requests.post(url, json={"query": probe}, timeout=5).json()["data"]["workspaceOrError"]
                loaded = bool(entries["locationEntries"]) and all(
                    e["loadStatus"] == "LOADED" for e in entries["locationEntries"]
                )
            except (requests.ConnectionError, requests.Timeout, KeyError, TypeError, ValueError):
                pass
            if not loaded:
                time.sleep(1)
        assert loaded, "dagster-webserver did not load the code location"
        yield UI(url, env, manifest)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def nodes(ui: UI) -> list[dict[str, Any]]:
    return ui.query(ASSETS_QUERY)["assetNodes"]


def _key(node: dict[str, Any]) -> str:
    return "/".join(node["assetKey"]["path"])


def _entries(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["label"]: entry for entry in entries}


def test_each_canonical_asset_shows_a_column_per_dictionary_field(nodes: list[dict[str, Any]]) -> None:
    """Every dictionary entity's table, as a column schema of the asset that builds it (contacts are built
    with the customers, and shown there as `contacts_columns`)."""
    dictionary = load_dictionary()
    schemas = {}
    for node in nodes:
        if node["assetKey"]["path"][0] == "canonical":
            entries = _entries(node["metadataEntries"])
            assert "dagster/column_schema" in entries, f"{_key(node)} shows no column schema"
            assert entries["dagster/table_name"]["text"] == "canonical." + node["assetKey"]["path"][1]
            for label, entry in entries.items():
                if label == "dagster/column_schema":
                    schemas[node["assetKey"]["path"][1]] = entry["schema"]["columns"]
                elif label.endswith("_columns") and "schema" in entry:
                    schemas[label.removesuffix("_columns")] = entry["schema"]["columns"]
    for entity, spec in dictionary.entities.items():
        columns = {column["name"]: column for column in schemas[entity]}
        assert set(spec.fields) <= set(columns), (entity, set(spec.fields) - set(columns))
        assert all(columns[name]["description"] for name in spec.fields), entity


def test_every_asset_has_the_owner_its_alerts_name(nodes: list[dict[str, Any]]) -> None:
    owners = load_monitoring().owners
    teams = {owners.of(None), *(owners.of(role) for role in ("crm", "billing", "support"))}
    for node in nodes:
        shown = [owner.get("team") or owner.get("email") for owner in node["owners"]]
        assert shown, f"{_key(node)} has no owner"
        assert set(shown) <= teams, (_key(node), shown)
    by_key = {_key(node): node for node in nodes}
    assert [o["team"] for o in by_key["crm/contacts"]["owners"]] == [owners.of("crm")]
    assert [o["team"] for o in by_key["billing/invoices"]["owners"]] == [owners.of("billing")]


def test_groups_match_key_prefixes(nodes: list[dict[str, Any]]) -> None:
    assert {_key(node): node["groupName"] for node in nodes} == {
        _key(node): node["assetKey"]["path"][0] for node in nodes
    }


def _reconciliation_checks(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**check, "asset": _key(node)}
        for node in nodes
        for check in node["assetChecksOrError"].get("checks", [])
        if "reconciliation" in check["jobNames"]
    ]


def test_failed_reconciliation_checks_show_the_planted_records_as_a_table(ui: UI, nodes: list[dict[str, Any]]) -> None:
    checks = _reconciliation_checks(nodes)
    assert len(checks) == 4
    assert {check["canExecuteIndividually"] for check in checks} == {"CAN_EXECUTE"}
    listed: set[str] = set()
    failed = [c for c in checks if c["executionForLatestMaterialization"]["evaluation"]["success"] is False]
    assert failed
    for check in failed:
        entries = _entries(check["executionForLatestMaterialization"]["evaluation"]["metadataEntries"])
        where = f"{check['asset']} {check['name']}"
        assert "records" in entries, f"{where}: no records table"
        table = entries["records"]["table"]
        rows = [json.loads(record) for record in table["records"]]
        assert rows and {column["name"] for column in table["schema"]["columns"]} >= set(rows[0])
        assert entries["records_total"]["intValue"] >= len(rows), where
        listed |= {str(value) for row in rows for value in row.values() if value is not None}
    planted = [str(d["id"]) for d in ui.manifest["defects"] if d["expected"] == "reconciliation"]
    assert planted
    assert [record_id for record_id in planted if record_id not in listed] == []


def test_the_open_alerts_are_an_asset_the_ui_shows(ui: UI) -> None:
    from integration_assets.core.resources import WarehouseResource
    from integration_assets.monitoring.alerts import load_alerts

    opened = [a for a in load_alerts(WarehouseResource(url=ui.env["WAREHOUSE_URL"]).open()) if a["status"] == "open"]
    assert opened
    asset = ui.query(ALERTS_QUERY)["assetOrError"]
    assert asset["assetMaterializations"], "ops/alerts was never reported"
    entries = _entries(asset["assetMaterializations"][0]["metadataEntries"])
    assert entries["open_count"]["intValue"] == len(opened)
    rows = [json.loads(record) for record in entries["open_alerts"]["table"]["records"]]
    assert len(rows) == len(opened)
    shown = json.dumps(rows)
    assert all(alert["summary"][:40] in shown for alert in opened)


def test_a_reconciliation_run_says_how_many_checks_failed(ui: UI, nodes: list[dict[str, Any]]) -> None:
    runs = ui.query(RUNS_QUERY)["runsOrError"]["results"]
    assert len(runs) == 1
    tags = {tag["key"]: tag["value"] for tag in runs[0]["tags"]}
    failed = [
        c
        for c in _reconciliation_checks(nodes)
        if c["executionForLatestMaterialization"]["runId"] == runs[0]["runId"]
        and c["executionForLatestMaterialization"]["evaluation"]["success"] is False
    ]
    assert failed
    assert tags.get(FAILED_CHECKS_TAG) == str(len(failed)), tags
