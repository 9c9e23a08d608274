"""Each raw record is read once per version (`canonical/staged.py`): a build from staged reads must come out
exactly as one that reads every whole payload, and a build after changes at the vendors exactly as a rebuild
that reads everything anew: every canonical table, the record map and the review queue, on both warehouses."""

import copy
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from dagster import DagsterInstance, materialize

from integration_assets.canonical import review
from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.canonical.build import OWN, build_entity, streams_of
from integration_assets.canonical.identity import resolve
from integration_assets.canonical.load import PhaseLoader, load_raw
from integration_assets.canonical.matches import MATCHES, kept_matches
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
        for stream in streams_of(entity)
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


def _edit(warehouse: Warehouse) -> int:
    """Changes at the raw tables that move records between groups (a payer to another client, a deal to another
    client and won, an invoice to another deal, a user to another organization), make two companies one client
    recorded twice, delete a company and remove a contact's row outright; returns how many records changed."""
    rows = {t: warehouse.raw_records(f"raw.{t}") for t in ("crm_companies", "crm_deals", "billing_customers")}
    rows |= {t: warehouse.raw_records(f"raw.{t}") for t in ("billing_invoices", "support_users", "crm_contacts")}
    organizations = warehouse.raw_records("raw.support_organizations")
    # the client of an organization with users is deleted: its users' client goes with it, unedited
    staffed = {r["payload"].get("organization_id") for r in rows["support_users"].values()}
    fourth = next(
        str(r["payload"]["external_id"])
        for r in sorted(organizations.values(), key=lambda r: r["payload"]["id"])
        if r["payload"]["id"] in staffed and str(r["payload"].get("external_id")) in rows["crm_companies"]
    )
    live = sorted(rid for rid, r in rows["crm_companies"].items() if not r["is_deleted"] and rid != fourth)
    first, second, third = live[:3]

    def changed(table: str, rid: str, edit: Callable[[dict], None], *, deleted: bool = False) -> RawRow:
        payload = copy.deepcopy(rows[table][rid]["payload"])
        edit(payload)
        return RawRow(rid, rows[table][rid]["version"] + 1, payload, is_deleted=deleted)

    payer = next(rid for rid, r in sorted(rows["billing_customers"].items()) if r["payload"].get("metadata"))
    deal = sorted(rows["crm_deals"])[0]
    invoice = next(rid for rid, r in sorted(rows["billing_invoices"].items()) if r["payload"].get("metadata"))
    user = next(rid for rid, r in sorted(rows["support_users"].items()) if r["payload"].get("organization_id"))
    others = sorted(staffed - {None})
    twin = rows["crm_companies"][second]["payload"]["properties"]
    edits = {
        "billing_customers": [
            changed("billing_customers", payer, lambda p: p["metadata"].update(hubspot_company_id=first))
        ],
        "crm_deals": [
            changed(
                "crm_deals",
                deal,
                lambda p: (
                    p["properties"].update(dealstage="closedwon"),
                    p["associations"].update(companies={"results": [{"id": third, "type": "deal_to_company"}]}),
                ),
            )
        ],
        "billing_invoices": [
            changed(
                "billing_invoices",
                invoice,
                lambda p: p["metadata"].update(hubspot_deal_id=sorted(rows["crm_deals"])[1]),
            )
        ],
        "support_users": [
            changed(
                "support_users",
                user,
                lambda p: p.update(organization_id=next(o for o in others if o != p["organization_id"])),
            )
        ],
        "crm_companies": [
            changed("crm_companies", first, lambda p: p["properties"].update(name=twin["name"], domain=twin["domain"])),
            changed("crm_companies", fourth, lambda p: p.update(archived=True), deleted=True),
        ],
    }
    with warehouse.transaction() as tx:
        for table, changes in edits.items():
            tx.upsert_raw(f"raw.{table}", changes, run_id="edit")
        tx.execute("DELETE FROM raw.crm_contacts WHERE id = ?", [sorted(rows["crm_contacts"])[0]])
    return sum(map(len, edits.values())) + 1


def test_a_build_of_what_changed_equals_a_rebuild_when_records_move_between_groups(
    sandbox: Sandbox, warehouse_url: str
) -> None:
    everything = [*SOURCES, *canonical_assets]
    warehouse = Warehouse.from_url(warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        first = materialized(materialize(everything, resources=resources(sandbox, warehouse_url), instance=instance))
        assert all(first[f"canonical/{e}"]["built"].value == "everything" for e in ENTITIES)
        assert _edit(warehouse) == 7
        after = materialized(
            materialize(canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance)
        )
        assert all(after[f"canonical/{e}"]["built"].value == "only what changed" for e in ENTITIES)
        built = {e: after[f"canonical/{e}"]["records_built"].value for e in ENTITIES}
        assert all(built[e] < first[f"canonical/{e}"]["records_built"].value for e in ENTITIES), built
        assert built["customers"] and built["deals"] and built["invoices"], built
        incremental = _snapshot(warehouse)
        rebuild = {"ops": {f"canonical__{e}": {"config": {"rebuild": True}} for e in ENTITIES}}
        again = materialized(
            materialize(
                canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance, run_config=rebuild
            )
        )
    assert all(again[f"canonical/{e}"]["built"].value == "everything" for e in ENTITIES)
    rebuilt = _snapshot(warehouse)
    for name, rows in rebuilt.items():
        assert incremental[name] == rows, (name, sorted(set(incremental[name]) ^ set(rows))[:5])
    reasons = {row[3] for row in rebuilt["review_queue"] if row[6] == "open"}
    assert "duplicate_record" in reasons, reasons  # the twin companies are in review


def test_identity_kept_when_no_path_it_reads_changed(sandbox: Sandbox, warehouse_url: str) -> None:
    """Rows loaded again with a new phone and a new industry move the raw tables' versions but no value
    identity reads: the next builds reuse the kept matches (no new resolution) and still equal a rebuild."""
    everything = [*SOURCES, *canonical_assets]
    warehouse = Warehouse.from_url(warehouse_url)
    resolutions = f"SELECT identity, max(changed_in) FROM {MATCHES} GROUP BY identity ORDER BY identity"
    with DagsterInstance.ephemeral() as instance:
        materialize(everything, resources=resources(sandbox, warehouse_url), instance=instance)
        before = warehouse.query(resolutions)
        companies, contacts = warehouse.raw_records("raw.crm_companies"), warehouse.raw_records("raw.crm_contacts")

        def edited(rows: dict, rid: str, field: str, value: str) -> RawRow:
            payload = copy.deepcopy(rows[rid]["payload"])
            payload["properties"][field] = value
            return RawRow(rid, rows[rid]["version"] + 1, payload, is_deleted=rows[rid]["is_deleted"])

        with warehouse.transaction() as tx:
            tx.upsert_raw("raw.crm_companies", [edited(companies, sorted(companies)[0], "industry", "Farming")], "e")
            tx.upsert_raw("raw.crm_contacts", [edited(contacts, sorted(contacts)[0], "phone", "+44 20 7946 0000")], "e")
        after = materialized(
            materialize(canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance)
        )
        built = {e: after[f"canonical/{e}"]["built"].value for e in ENTITIES if "built" in after[f"canonical/{e}"]}
        assert built == dict.fromkeys(("customers", "invoices", "payments", "tickets"), "only what changed"), built
        assert warehouse.query(resolutions) == before
        how = [(name, why) for e in built for name, why in after[f"canonical/{e}"]["identity"].value.items()]
        for name in ("customers", "contacts"):  # the first build to need it finds nothing it reads changed
            found = sorted(why for identity, why in how if identity == name)  # "its raw tables" sorts first
            assert found[-1:] == ["kept: no value it reads changed"], found
            assert set(found[:-1]) <= {"kept: its raw tables did not change"}, found
        incremental = _snapshot(warehouse)
        rebuild = {"ops": {f"canonical__{e}": {"config": {"rebuild": True}} for e in ENTITIES}}
        materialize(
            canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance, run_config=rebuild
        )
    rebuilt = _snapshot(warehouse)
    for name, rows in rebuilt.items():
        assert incremental[name] == rows, (name, sorted(set(incremental[name]) ^ set(rows))[:5])


def test_only_source_records_matched_again_when_no_target_changed(sandbox: Sandbox, warehouse_url: str) -> None:
    """Edits of the records identity places (a payer linked to another client, a payer's email in capitals, a
    payer gone from the raw table, a user given another contact's email) leave every target's values as they
    were: the next resolution matches again only the source records loaded since, against the kept indexes,
    and the tables still equal a rebuild's."""
    everything = [*SOURCES, *canonical_assets]
    warehouse = Warehouse.from_url(warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        materialize(everything, resources=resources(sandbox, warehouse_url), instance=instance)
        payers, users = warehouse.raw_records("raw.billing_customers"), warehouse.raw_records("raw.support_users")
        contacts = warehouse.raw_records("raw.crm_contacts")
        companies = sorted(rid for rid, r in warehouse.raw_records("raw.crm_companies").items() if not r["is_deleted"])
        linked = [
            rid for rid, r in sorted(payers.items()) if (r["payload"].get("metadata") or {}).get("hubspot_company_id")
        ]
        mailed = next(rid for rid, r in sorted(payers.items()) if r["payload"].get("email") and rid not in linked[:2])
        user = next(rid for rid, r in sorted(users.items()) if r["payload"].get("role") == "end-user")
        email = next(
            r["payload"]["properties"]["email"]
            for _, r in sorted(contacts.items())
            if r["payload"]["properties"].get("email") not in (None, "", users[user]["payload"].get("email"))
        )

        def edited(rows: dict, rid: str, edit: Callable[[dict], None]) -> RawRow:
            payload = copy.deepcopy(rows[rid]["payload"])
            edit(payload)
            return RawRow(rid, rows[rid]["version"] + 1, payload, is_deleted=rows[rid]["is_deleted"])

        other = next(c for c in companies if c != payers[linked[0]]["payload"]["metadata"]["hubspot_company_id"])
        with warehouse.transaction() as tx:
            tx.upsert_raw(
                "raw.billing_customers",
                [
                    edited(payers, linked[0], lambda p: p["metadata"].update(hubspot_company_id=other)),
                    edited(payers, mailed, lambda p: p.update(email=p["email"].upper())),
                ],
                run_id="edit",
            )
            tx.upsert_raw("raw.support_users", [edited(users, user, lambda p: p.update(email=email))], run_id="edit")
            tx.execute("DELETE FROM raw.billing_customers WHERE id = ?", [linked[1]])
        after = materialized(
            materialize(canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance)
        )
        metadata = [after[f"canonical/{e}"] for e in ENTITIES]
        how = [why for found in metadata if "identity" in found for why in found["identity"].value.values()]
        assert "matched again: 3 source records loaded since (targets unchanged)" in how, how
        assert "matched again: 1 source records loaded since (targets unchanged)" in how, how
        assert not any(why == "resolved anew" for why in how), how
        moved = warehouse.query(
            f"SELECT target FROM {MATCHES} WHERE identity = 'customers' AND record_id = ?", [linked[0]]
        )
        assert moved == [(f"crm:{other}",)]
        dictionary, decisions = load_dictionary(), review.load_decisions()
        for name in ("customers", "contacts"):  # as a resolution over every record finds them
            streams = {(s.system, s.object_type) for s in (dictionary.identity[name].target,)}
            streams |= {(s.from_.system, s.from_.object_type) for s in dictionary.identity[name].steps}
            streams |= {("crm", s.match.object_type) for s in dictionary.identity[name].steps if s.match.object_type}
            whole = {
                stream: {
                    rid: {"payload": row["payload"], "is_deleted": bool(row["is_deleted"])}
                    for rid, row in warehouse.raw_records(CATALOG.stream_of(*stream).raw_table).items()
                }
                for stream in streams
            }
            assert kept_matches(warehouse, name)[0] == resolve(dictionary, name, whole, decisions), name
        incremental = _snapshot(warehouse)
        rebuild = {"ops": {f"canonical__{e}": {"config": {"rebuild": True}} for e in ENTITIES}}
        again = materialized(
            materialize(
                canonical_assets, resources=resources(sandbox, warehouse_url), instance=instance, run_config=rebuild
            )
        )
    how = sorted(
        why
        for e in ENTITIES
        if "identity" in again[f"canonical/{e}"]
        for why in again[f"canonical/{e}"]["identity"].value.values()
    )
    # a rebuild trusts no kept match: the first build of its run to need each identity resolves it anew
    assert how.count("resolved anew") == 2 and set(how) == {"resolved anew", "kept: its raw tables did not change"}, how
    rebuilt = _snapshot(warehouse)
    for name, rows in rebuilt.items():
        assert incremental[name] == rows, (name, sorted(set(incremental[name]) ^ set(rows))[:5])
