"""Drills: one record no database can store (a NUL character) is quarantined, and everything else goes on.

It used to refuse its whole chunk and the cursor, fail the step on a deterministic error that was retried, and
skip every canonical asset, on every run, until someone edited the record at the vendor. Now: every other
record lands, the cursor moves, one review item holds the record (its raw content escaped in ops.quarantine),
the stream's contract check fails at WARN severity with a next action, its completeness check counts the record
as quarantined rather than missing, the canonical assets build, and the item
resolves itself once the vendor's record is corrected. On DuckDB and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as CANONICAL
from integration_assets.core.catalog import Chunk
from integration_assets.core.quarantine import QUARANTINE_TABLE, REVIEW_TABLE
from integration_assets.core.sync import SyncReport, _store
from integration_assets.core.warehouse import RawRow, Transaction, Warehouse
from integration_assets.core.warehouse.rows import (
    MALFORMED_RECORD,
    MAX_PAYLOAD_BYTES,
    PAYLOAD_TOO_LARGE,
    RAW_KEEP_CHARS,
    REFUSED_BY_DATABASE,
    UNSTORABLE_PAYLOAD,
    build_rows,
    screen,
)
from integration_assets.systems import CATALOG
from integration_assets_tests.testing.sandbox import sandbox_records
from integration_assets_tests.testing.sync import checked_sources, resources
from integration_sandbox.server import Sandbox

CONTACTS = CATALOG.stream_of("crm", "contacts")
CONTACTS_KEY = AssetKey(["crm", "contacts"])


def _put(sandbox: Sandbox, record: dict) -> None:
    answer = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/records/contacts", json=record, timeout=10)
    assert answer.status_code == 200, answer.text


def _edited_now(record: dict, **properties: str) -> dict:
    """The record as a person's edit in HubSpot leaves it: new values, and a later modification time."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    changed = {**record["properties"], **properties, "lastmodifieddate": stamp}
    return {**record, "properties": changed, "updatedAt": stamp}


class _Log:
    def drain(self) -> list:
        return []


class _Client:
    """What `_store` uses of an API client: its call log (nothing was called here)."""

    call_log = _Log()


def _pad_contacts(sandbox: Sandbox, total: int) -> None:
    """More contacts, each a copy of a live one with its own id and email, until the sandbox holds `total`."""
    contacts = sandbox_records(sandbox, "hubspot", "contacts")
    live = [c for c in contacts if not c.get("archived")]
    copies = []
    for n in range(total - len(contacts)):
        model = live[n % len(live)]
        properties = {**model["properties"], "email": f"pad{n}@padding.example"}
        copies.append({**model, "id": str(40_000_000 + n), "properties": properties})
    answer = requests.post(f"{sandbox.url('hubspot')}/__sandbox__/records/contacts", json=copies, timeout=60)
    assert answer.status_code == 200, answer.text


def _contract_check(result):
    return _check(result, "contract")


def _check(result, name: str):
    found = [c for c in result.get_asset_check_evaluations() if c.asset_key == CONTACTS_KEY]
    assert sorted(c.check_name for c in found) == ["complete_against_vendor", "contract"]
    return next(c for c in found if c.check_name == name)


def test_a_nul_in_one_contact_is_quarantined_while_the_rest_lands(sandbox: Sandbox, warehouse_url: str) -> None:
    _pad_contacts(sandbox, CONTACTS.reader.chunk_records)  # the case: one in a whole chunk of 5,000
    contacts = sandbox_records(sandbox, "hubspot", "contacts")
    total = len(contacts)
    live = [c for c in contacts if not c.get("archived")]
    assert total == CONTACTS.reader.chunk_records == 5_000 and len(live) <= 5_000  # one chunk holds them all
    victim = live[len(live) // 2]
    original_name = victim["properties"].get("firstname") or "Ann"
    _put(sandbox, _edited_now(victim, firstname=f"{original_name}\u0000x"))

    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*checked_sources("contract", "complete_against_vendor"), *CANONICAL],
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
        assert result.success  # no step failed, so nothing was retried
        assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
        built = {m.asset_key.to_user_string() for m in result.asset_materializations_for_node("canonical__customers")}
        assert built == {"canonical/customers"}  # the canonical layer still builds

        warehouse = Warehouse.from_url(warehouse_url)
        stored = warehouse.raw_records(CONTACTS.raw_table)
        assert len(stored) == total - 1 and victim["id"] not in stored
        assert warehouse.cursor(CONTACTS.key) is not None  # the cursor moved past the bad record

        items = warehouse.records(f"SELECT * FROM {REVIEW_TABLE} WHERE found_by = ?", [CONTACTS.key])
        assert [(i["system"], i["object_type"], i["record_id"], i["reason_code"], i["status"]) for i in items] == [
            ("crm", "contacts", str(victim["id"]), UNSTORABLE_PAYLOAD, "open")
        ]
        assert "ops.quarantine" in items[0]["next_action"] and "\x00" not in items[0]["detail"]
        kept = warehouse.records(f"SELECT * FROM {QUARANTINE_TABLE}")
        assert len(kept) == 1 and kept[0]["record_id"] == str(victim["id"])
        assert "\\u0000x" in kept[0]["raw"] and "\x00" not in kept[0]["raw"] and kept[0]["raw"].isascii()

        check = _contract_check(result)
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert check.metadata["quarantined_open"].value == 1
        assert str(victim["id"]) in check.metadata["summary"].value
        assert "ops.quarantine" in check.metadata["next_action"].value

        # live at the vendor, yet not in the raw table: quarantined, not missing (no refresh could store it)
        complete = _check(result, "complete_against_vendor")
        assert complete.passed, complete.metadata
        assert complete.metadata["quarantined"].value == 1 and complete.metadata["missing_records"].value == 0
        assert "ops.quarantine" in complete.metadata["summary"].value

        accounting = [c for c in result.get_asset_check_evaluations() if c.check_name == "accounting_balances"]
        assert accounting and all(c.passed for c in accounting), [c.metadata for c in accounting if not c.passed]

        # corrected at the vendor: the next (incremental) sync stores it and resolves the item
        _put(sandbox, _edited_now(victim, firstname=original_name))
        again = materialize(
            checked_sources("contract", "complete_against_vendor"),
            selection=[CONTACTS_KEY],
            resources=resources(sandbox, warehouse_url),
            instance=instance,
        )
        assert again.success
        assert len(warehouse.raw_records(CONTACTS.raw_table)) == total
        items = warehouse.records(f"SELECT status, occurrences FROM {REVIEW_TABLE} WHERE found_by = ?", [CONTACTS.key])
        assert [(i["status"], i["occurrences"]) for i in items] == [("resolved", 1)]
        assert warehouse.count(QUARANTINE_TABLE) == 0
        assert _contract_check(again).passed
        complete = _check(again, "complete_against_vendor")
        assert complete.passed and complete.metadata["quarantined"].value == 0


def test_the_database_refusing_one_value_quarantines_that_record_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the screening, a value the database still refuses: the chunk is probed for the record at fault,
    which is quarantined, and the rest commits with the cursor."""
    warehouse = Warehouse.from_url(str(tmp_path / "wh.duckdb"))
    warehouse.ensure_ops_tables()
    warehouse.ensure_raw_table(CONTACTS.raw_table)
    rows = [RawRow(id=str(i), version=1, payload={"n": i}) for i in range(50)]
    real = Transaction.upsert_raw

    def refusing(self: Transaction, table: str, batch, run_id: str):
        if any(row.id == "17" for row in batch):
            raise duckdb.ConversionException(
                "Conversion Error: Could not convert string 'Ann Lee' to INT32 for ann@example.com\n"
                "DETAIL: personal data here"
            )
        return real(self, table, batch, run_id)

    monkeypatch.setattr(Transaction, "upsert_raw", refusing)
    report = SyncReport(stream=CONTACTS.key, mode="full")
    with warehouse.held():
        _store([Chunk(rows, cursor="42")], CONTACTS, _Client(), warehouse, CONTACTS.raw_table, "r", set(), report, ())
    assert warehouse.cursor(CONTACTS.key) == "42"
    assert sorted(warehouse.raw_records(CONTACTS.raw_table), key=int) == [str(i) for i in range(50) if i != 17]
    assert report.quarantined == 1 and report.quarantine_reasons == {REFUSED_BY_DATABASE: 1}
    item = warehouse.records(f"SELECT record_id, reason_code, detail FROM {REVIEW_TABLE}")
    assert [(i["record_id"], i["reason_code"]) for i in item] == [("17", REFUSED_BY_DATABASE)]
    assert "personal data" not in item[0]["detail"]  # the database's DETAIL line quotes values: left out
    assert "Ann Lee" not in item[0]["detail"] and "ann@" not in item[0]["detail"]  # DuckDB's first line may too
    assert "Could not convert string <value> to INT32" in item[0]["detail"]


def test_an_error_that_is_no_record_s_fault_still_fails_the_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = Warehouse.from_url(str(tmp_path / "wh.duckdb"))
    warehouse.ensure_ops_tables()
    warehouse.ensure_raw_table(CONTACTS.raw_table)

    def always(self: Transaction, table: str, batch, run_id: str):
        raise duckdb.ConversionException("the whole statement is wrong")

    monkeypatch.setattr(Transaction, "upsert_raw", always)
    report = SyncReport(stream=CONTACTS.key, mode="full")
    rows = [RawRow(id=str(i), version=1, payload={"n": i}) for i in range(4)]
    with pytest.raises(duckdb.ConversionException):
        _store([Chunk(rows, cursor="1")], CONTACTS, _Client(), warehouse, CONTACTS.raw_table, "r", set(), report, ())
    assert warehouse.cursor(CONTACTS.key) is None


def test_screening_names_a_reason_for_each_kind_of_unstorable_record() -> None:
    huge = "x" * (MAX_PAYLOAD_BYTES + 1)
    rows = [
        RawRow(id="ok", version=1, payload={"name": "fine \u202e but odd", "deep": [[[None]]]}),
        RawRow(id="nul", version=1, payload={"name": "a\u0000b"}),
        RawRow(id="surrogate", version=1, payload={"name": "\ud800"}),
        RawRow(id="huge", version=1, payload={"name": huge}),
        RawRow(id="", version=1, payload={}),
        RawRow(id="list", version=1, payload=["not", "an", "object"]),  # type: ignore[arg-type]
        RawRow(id="version", version="yesterday", payload={}),  # type: ignore[arg-type]
        RawRow(id="literal", version=1, payload={"name": "a \\u0000 written out"}),  # a backslash, not a NUL
    ]
    screened = screen(rows)
    assert [row.id for row in screened.rows] == ["ok", "literal"]
    reasons = {item.id: item.reason_code for item in screened.rejected}
    assert reasons["nul"] == reasons["surrogate"] == UNSTORABLE_PAYLOAD
    assert reasons["huge"] == PAYLOAD_TOO_LARGE
    assert reasons["list"] == reasons["version"] == MALFORMED_RECORD
    assert [r for r in reasons if r.startswith("<no id ")] and len(reasons) == 6
    big = next(item for item in screened.rejected if item.id == "huge")
    assert big.truncated and len(big.raw) == RAW_KEEP_CHARS and big.raw_bytes > MAX_PAYLOAD_BYTES
    assert all(item.raw.isascii() and "\x00" not in item.raw for item in screened.rejected)


def test_a_record_its_row_builder_cannot_read_is_quarantined_not_raised() -> None:
    def build(record: dict) -> RawRow:
        return RawRow(id=str(record["id"]), version=int(record["properties"]["v"]), payload=record)

    rows = build_rows([{"id": 1, "properties": {"v": 2}}, {"id": 2, "properties": None}, {"x": 1}], build)
    screened = screen(rows)
    assert [row.id for row in screened.rows] == ["1"]
    assert [(item.id[:7], item.reason_code) for item in screened.rejected] == [
        ("2", MALFORMED_RECORD),
        ("<no id ", MALFORMED_RECORD),
    ]
    assert "TypeError" in screened.rejected[0].detail
