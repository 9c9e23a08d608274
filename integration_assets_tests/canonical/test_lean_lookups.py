"""The lookups read only by identity resolution are loaded lean (the paths the identity steps read, extracted in
the warehouse): identity resolution must come out exactly as from the whole payloads, on both warehouses, on a
business with every kind of planted defect (odd ids, missing and conflicting links, duplicate domains)."""

from dagster import DagsterInstance, materialize

from integration_assets.canonical import review
from integration_assets.canonical.build import LOOKUPS, OWN
from integration_assets.canonical.identity import resolve
from integration_assets.canonical.load import IDENTITY_ONLY_LOOKUPS, build_paths, identity_paths, load_raw
from integration_assets.core.payload import MISSING, resolve_path
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sync import SOURCES, resources
from integration_sandbox.server import Sandbox


def _whole(warehouse: Warehouse, streams) -> dict:
    return {
        stream: {
            rid: {"payload": row["payload"], "is_deleted": bool(row["is_deleted"])}
            for rid, row in warehouse.raw_records(CATALOG.stream_of(*stream).raw_table).items()
        }
        for stream in streams
    }


def test_identity_reads_the_same_from_lean_lookups(sandbox: Sandbox, warehouse_url: str) -> None:
    with DagsterInstance.ephemeral() as instance:
        assert materialize(SOURCES, resources=resources(sandbox, warehouse_url), instance=instance).success
    warehouse = Warehouse.from_url(warehouse_url)
    dictionary, decisions = load_dictionary(), review.load_decisions()
    assert {"invoices", "payments", "tickets"} == IDENTITY_ONLY_LOOKUPS
    for entity in IDENTITY_ONLY_LOOKUPS:
        lean = load_raw(warehouse, entity, dictionary).raw
        whole = _whole(warehouse, [*OWN[entity], *LOOKUPS[entity]])
        assert lean.keys() == whole.keys()
        for stream in [*OWN[entity], *LOOKUPS[entity]]:
            assert lean[stream].keys() == whole[stream].keys()
            own = stream in OWN[entity]  # own records come with their staged reads and the paths the build follows
            paths = build_paths(dictionary, stream) if own else identity_paths(dictionary, stream)
            assert "id" in paths and len(paths) > 1
            for rid, record in whole[stream].items():
                slim = lean[stream][rid]
                assert slim["is_deleted"] == record["is_deleted"]
                assert ("read" in slim) == own
                assert len(str(slim["payload"])) <= len(str(record["payload"]))
                for path in paths:
                    found = resolve_path(record["payload"], path)
                    kept = resolve_path(slim["payload"], path)
                    # nothing there reads as nothing (missing or null) either way; a value reads the same
                    assert kept == found or (kept is MISSING and found in (None, MISSING)), (stream, rid, path)
        for name in dictionary.identity:
            assert resolve(dictionary, name, lean, decisions) == resolve(dictionary, name, whole, decisions), name
