"""What the asset graph declares for the UI, read in process from the Definitions: column schemas from the
contracts and the field dictionary, owners, table names, storage and vendor kinds, groups equal to key
prefixes, plain first description lines and the freshness windows in exact minutes."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import AssetKey, TableSchema

from integration_assets.core.columns import PII_TAG, storage_kind
from integration_assets.core.policies import freshness_windows
from integration_assets.core.source_asset import PAYLOAD_SHAPE
from integration_assets.definitions import defs
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.monitoring.drift import SHAPE_KEYS, _shape_entry
from integration_assets.systems import CATALOG

GRAPH = defs.resolve_asset_graph()
NODES = {key.to_user_string(): GRAPH.get(key) for key in GRAPH.get_all_asset_keys()}
DICTIONARY = load_dictionary()
# the warehouse tables this slice's assets are (write-back assets write into the vendors: no table of theirs)
TABLES = {
    **{stream.key: stream.raw_table for stream in CATALOG.streams},
    **{f"canonical/{entity}": f"canonical.{entity}" for entity in ("customers", "deals", "invoices", "payments")},
    "canonical/tickets": "canonical.tickets",
    "canonical/customer_360": "canonical.customer_360",
    "ops/review_queue": "ops.review_queue",
    "ops/integration_health": "ops.integration_health",
}


def _schema(key: str, entry: str = "dagster/column_schema") -> TableSchema:
    schema = NODES[key].metadata[entry]
    return getattr(schema, "schema", schema)


@pytest.mark.parametrize("entity", [e for e in DICTIONARY.entities if e != "contacts"])
def test_each_canonical_asset_declares_a_column_per_dictionary_field(entity: str) -> None:
    columns = {column.name: column for column in _schema(f"canonical/{entity}").columns}
    fields = DICTIONARY.entity(entity).fields
    assert set(fields) <= set(columns), set(fields) - set(columns)
    for name, spec in fields.items():
        column = columns[name]
        assert column.description and column.description.startswith(spec.description.rstrip(".")), name
        for system, source in spec.sources.items():  # names its raw sources: lineage is hosted-only
            assert CATALOG.stream_of(system, source.object_type).key in column.description, (name, system)
        assert (column.tags.get(PII_TAG) == "true") == spec.pii, name
    assert not columns["is_deleted"].constraints.nullable


def test_the_contacts_table_customers_rebuilds_is_described_too() -> None:
    columns = {column.name for column in _schema("canonical/customers", "contacts_columns").columns}
    assert set(DICTIONARY.entity("contacts").fields) <= columns


def test_canonical_columns_carry_the_pandera_contract() -> None:
    columns = {column.name: column for column in _schema("canonical/deals").columns}
    assert columns["deal_id"].constraints.unique and not columns["deal_id"].constraints.nullable
    assert "one of open, won, lost" in columns["stage"].constraints.other
    assert columns["customer_id"].constraints.other[0] == "references canonical.customers"


@pytest.mark.parametrize("stream", CATALOG.streams, ids=lambda s: s.key)
def test_each_source_declares_its_contract_as_columns(stream: Any) -> None:
    columns = {column.name: column for column in _schema(stream.key).columns}
    assert {"id", "payload", "is_deleted"} <= set(columns)
    for path in stream.contract_columns.values():
        assert f"payload.{path}" in columns, path
    # every raw field the dictionary calls personal data is tagged so in the raw schema (or its container is)
    pii = {name for name, column in columns.items() if column.tags.get(PII_TAG) == "true"}
    for found in DICTIONARY.fields_from(stream.role, stream.object_type):
        if found.spec.pii:
            for path in found.paths:
                assert any(f"payload.{path}".startswith(name) for name in pii), (stream.key, path)


def test_every_asset_has_an_owner_and_code_reference() -> None:
    for key, node in NODES.items():
        assert node.owners and all(owner.startswith("team:") for owner in node.owners), key
        # an external asset (a spec: ops/alerts, reported by the sensors) has no function to point at
        assert "dagster/code_references" in node.metadata or not node.is_executable, key
    assert NODES["crm/contacts"].owners == ["team:revenue-operations"]
    assert NODES["writeback/crm_to_billing"].owners == ["team:finance-operations"]


def test_tables_and_kinds() -> None:
    for key, table in TABLES.items():
        assert NODES[key].metadata["dagster/table_name"] == table, key
        assert storage_kind() in NODES[key].kinds, key
    for stream in CATALOG.streams:
        kinds = NODES[stream.key].kinds
        assert stream.vendor in kinds and len(kinds) <= 3, (stream.key, kinds)


def test_storage_kind_follows_the_warehouse_url() -> None:
    assert storage_kind({"WAREHOUSE_URL": "postgresql://u@h/db"}) == "postgres"
    assert storage_kind({"WAREHOUSE_URL": "/tmp/w.duckdb"}) == storage_kind({}) == "duckdb"


def test_groups_equal_key_prefixes() -> None:
    for key, node in NODES.items():
        assert node.group_name == AssetKey.from_user_string(key).path[0], (key, node.group_name)


def test_first_description_lines_are_plain_sentences() -> None:
    for key, node in NODES.items():
        first = (node.description or "").strip().splitlines()[0] if node.description else ""
        assert first and "#" not in first and len(first) <= 400, (key, first)


def test_canonical_descriptions_no_longer_paste_the_dictionary() -> None:
    for entity in ("customers", "deals", "invoices", "payments", "tickets"):
        assert len(NODES[f"canonical/{entity}"].description) < 1200, entity


def test_freshness_windows_are_stated_in_minutes() -> None:
    for key, node in NODES.items():
        if node.freshness_policy is None:
            continue
        layer = "source" if key in {s.key for s in CATALOG.streams} else "canonical"
        fail, warn = freshness_windows().windows(layer)
        assert node.metadata["freshness_warn_minutes"] == warn, key
        assert node.metadata["freshness_fail_minutes"] == fail, key
        assert f"{warn} minutes" in node.description and f"{fail} minutes" in node.description, key


def test_drift_reads_the_payload_shape_and_the_older_key() -> None:
    shape = TableSchema(columns=[])
    assert SHAPE_KEYS[0] == PAYLOAD_SHAPE
    assert _shape_entry({PAYLOAD_SHAPE: shape}) is shape
    assert _shape_entry({"dagster/column_schema": shape}) is shape  # a materialization from before the move
    assert _shape_entry({}) is None
