"""Each raw record is read once per version (`canonical/staged.py`): a build from staged reads must come out
exactly as one that reads every whole payload, and a build after changes at the vendors exactly as a rebuild
that reads everything anew: every canonical table, the record map and the review queue, on both warehouses."""

from datetime import UTC, datetime

import requests
from dagster import DagsterInstance, materialize

from integration_assets.canonical import review
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.canonical.build import LOOKUPS, OWN, build_entity
from integration_assets.canonical.load import PhaseLoader, load_raw
from integration_assets.canonical.staged import STAGED_READS, decode_read, encode_read
from integration_assets.canonical.validate import EMPTY, FieldValue, Problem, RecordRead
from integration_assets.core.warehouse import RawRow, Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import Money
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sync import SOURCES, materialized, resources
from integration_sandbox.server import Sandbox

ENTITIES = tuple(OWN)
TABLES = ("customers", "contacts", "deals", "invoices", "payments", "tickets", "customer_360", "record_map")


def test_a_read_survives_staging_value_for_value() -> None:
    read = RecordRead(
        values={
            "name": FieldValue("Acme", "Acme "),
            "amount": FieldValue(Money(123456, "JPY"), None),
            "updated_at": FieldValue(datetime(2026, 3, 1, 12, 30, 15, 250, tzinfo=UTC), None),
            "count": FieldValue(2**70, None),  # beyond 64 bits: orjson refuses, the fallback keeps it exact
            "ratio": FieldValue(0.1, None),
            "flag": FieldValue(False, None),
            "ids": FieldValue(["crm:1", "crm:2"], None),
            "phone": FieldValue(EMPTY, "n/a"),
        },
        problems=[Problem("unparseable_phone", "phone", "phone: 'n/a' is no number.")],
    )
    again = decode_read(encode_read(read))
    assert {name: found.value for name, found in again.values.items()} == {
        name: found.value for name, found in read.values.items()
    }
    assert again.get("phone") is EMPTY and type(again.get("count")) is int and again.problems == read.problems
    assert decode_read(encode_read(read)) is not again, "each read is fresh: builds may change what they are given"


def _whole(warehouse: Warehouse, entity: str) -> dict:
    return {
        stream: {
            rid: {"payload": row["payload"], "is_deleted": bool(row["is_deleted"])}
            for rid, row in warehouse.raw_records(CATALOG.stream_of(*stream).raw_table).items()
        }
        for stream in [*OWN[entity], *LOOKUPS[entity]]
    }


def test_builds_from_staged_reads_equal_builds_from_whole_payloads(sandbox: Sandbox, warehouse_url: str) -> None:
    with DagsterInstance.ephemeral() as instance:
        assert materialize(SOURCES, resources=resources(sandbox, warehouse_url), instance=instance).success
    warehouse = Warehouse.from_url(warehouse_url)
    company = next(iter(warehouse.raw_records("raw.crm_companies").values()))["payload"]
    with warehouse.transaction() as tx:  # an id that is no HubSpot id breaks the vendor contract
        tx.upsert_raw("raw.crm_companies", [RawRow("12x", 1, {**company, "id": "12x"})], run_id="drill")
    dictionary, decisions = load_dictionary(), review.load_decisions()
    for entity in ENTITIES:
        whole = build_entity(entity, dictionary, _whole(warehouse, entity), decisions)
        at_once = build_entity(entity, dictionary, load_raw(warehouse, entity, dictionary).raw, decisions)
        phased = build_entity(entity, dictionary, PhaseLoader(warehouse, dictionary), decisions)
        for staged in (at_once, phased):
            assert staged.tables.keys() == whole.tables.keys()
            for table, frame in whole.tables.items():
                assert staged.tables[table].equals(frame), (entity, table)
            assert staged.items == whole.items and staged.accepted == whole.accepted, entity
            assert staged.records_in == whole.records_in, entity
            failed = {s: c.failed for s, c in staged.contracts.items()}
            assert failed == {s: c.failed for s, c in whole.contracts.items()}, entity
        staged = phased
        if entity == "customers":
            assert "12x" in staged.contracts[("crm", "companies")].failed
    again = load_raw(warehouse, "customers", dictionary)
    assert again.staged and all(s.read == 0 and s.reused > 0 for s in again.staged.values()), again.staged


def _mutate(sandbox: Sandbox) -> int:
    """Edits and deletes a few records of every stream at the vendors; returns how many changed."""
    changed = 0
    for stream in CATALOG.streams:
        reply = requests.post(
            f"{sandbox.url(stream.vendor)}/__sandbox__/mutate",
            json={"object_type": stream.object_type, "count": 3, "delete": 1, "seed": 5},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        changed += len(reply.json()["changed"])
    return changed


def _snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    tables = {
        table: sorted(tuple(map(str, row)) for row in warehouse.query(f"SELECT * FROM canonical.{table}"))
        for table in TABLES
    }
    tables["review_queue"] = sorted(
        warehouse.query(
            "SELECT system, object_type, record_id, reason_code, detail, next_action, status, found_by "
            "FROM ops.review_queue"
        )
    )
    return tables


def test_a_build_after_changes_equals_a_rebuild_that_reads_everything(sandbox: Sandbox, warehouse_url: str) -> None:
    everything = [*SOURCES, *canonical_assets]
    warehouse = Warehouse.from_url(warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        first = materialized(materialize(everything, resources=resources(sandbox, warehouse_url), instance=instance))
        total = sum(first[f"canonical/{e}"]["records_read"].value for e in ENTITIES)
        assert total == sum(warehouse.count(s.raw_table) for s in CATALOG.streams), "each record read once"
        assert _mutate(sandbox) > 0
        after = materialized(materialize(everything, resources=resources(sandbox, warehouse_url), instance=instance))
        read = {e: after[f"canonical/{e}"]["records_read"].value for e in ENTITIES}
        assert 0 < sum(read.values()) < total / 4, read  # only what the vendors changed is read again
        incremental = _snapshot(warehouse)
        rebuild = {"ops": {f"canonical__{e}": {"config": {"rebuild": True}} for e in ENTITIES}}
        again = materialized(
            materialize(
                canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance, run_config=rebuild
            )
        )
    assert sum(again[f"canonical/{e}"]["records_read"].value for e in ENTITIES) >= total
    assert all(again[f"canonical/{e}"]["records_reused"].value == 0 for e in ENTITIES)
    rebuilt = _snapshot(warehouse)
    for name, rows in rebuilt.items():
        assert incremental[name] == rows, (name, sorted(set(incremental[name]) ^ set(rows))[:5])
    assert rebuilt["review_queue"] and rebuilt["customers"]
    staged = warehouse.query(f"SELECT count(*) FROM {STAGED_READS}")[0][0]
    assert staged == sum(warehouse.count(s.raw_table) for s in CATALOG.streams)
