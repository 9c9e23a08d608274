"""The plan's bookkeeping (`canonical/plan.py`): each identity match remembers the resolution that gave it, so
a build asks the warehouse what changed since its own last build; tables an earlier release left in another
shape are replaced, and the next build builds everything. On both warehouses."""

from collections.abc import Iterable

from integration_assets.canonical.identity import Match
from integration_assets.canonical.matches import BASES, KEYS, MATCHES, keep_matches, kept_matches
from integration_assets.canonical.plan import STATE, ensure_state
from integration_assets.core.warehouse import Warehouse

PAYER, ORGANIZATION, LATER = (
    ("billing", "customers", "cus_1"),
    ("support", "organizations", "7"),
    ("billing", "customers", "cus_2"),
)


def _keep_matches(warehouse: Warehouse, name: str, version: str, matches: dict) -> int:
    return keep_matches(warehouse, name, {"identity": version}, matches, _records(matches, "stamp"))


def _records(refs: Iterable[tuple[str, str, str]], loaded_at: str) -> dict:
    """The raw records of `refs` as a resolution read them: what the kept matches take their stamps from."""
    records: dict = {}
    for system, object_type, rid in refs:
        records.setdefault((system, object_type), {})[rid] = {
            "payload": {},
            "is_deleted": False,
            "loaded_at": loaded_at,
        }
    return records


def _kept_matches(warehouse: Warehouse, name: str, version: str) -> tuple[dict, int] | None:
    return kept_matches(warehouse, name, version)


def _changed_in(warehouse: Warehouse) -> dict[tuple, tuple[bool, int]]:
    rows = warehouse.query(f"SELECT system, object_type, record_id, present, changed_in FROM {MATCHES}")
    return {(s, o, r): (bool(present), int(changed)) for s, o, r, present, changed in rows}


def test_each_match_remembers_the_resolution_that_last_changed_it(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    ensure_state(warehouse)
    first = {PAYER: Match("crm:1", "stripe_company_link"), ORGANIZATION: Match(None, "unmatched", "no_owner")}
    assert _keep_matches(warehouse, "customers", "v1", first) == 1
    assert _keep_matches(warehouse, "customers", "v1", first) == 1, "a version kept already is not kept again"
    assert _kept_matches(warehouse, "customers", "v1") == (first, 1)
    assert _kept_matches(warehouse, "customers", "v2") is None

    second = {PAYER: Match("crm:1", "stripe_company_link"), ORGANIZATION: Match("crm:2", "zendesk_domain_names")}
    assert _keep_matches(warehouse, "customers", "v2", second) == 2
    assert _changed_in(warehouse) == {PAYER: (True, 1), ORGANIZATION: (True, 2)}

    third = {ORGANIZATION: Match("crm:2", "zendesk_domain_names"), LATER: Match("crm:3", "stripe_email_domain")}
    assert _keep_matches(warehouse, "customers", "v3", third) == 3
    # the payer is gone: kept as no longer matched, so a build that used it learns that it changed
    assert _changed_in(warehouse) == {PAYER: (False, 3), ORGANIZATION: (True, 2), LATER: (True, 3)}
    assert _kept_matches(warehouse, "customers", "v3") == (third, 3)
    assert _keep_matches(warehouse, "customers", "v4", third) == 4
    assert _changed_in(warehouse)[PAYER] == (False, 3), "a record gone stays changed in the resolution it went"


def test_an_earlier_release_s_plan_tables_are_replaced(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    old_state = {"asset": "TEXT", "system": "TEXT", "object_type": "TEXT", "record_id": "TEXT", "signature": "TEXT"}
    old_matches = {"identity": "TEXT", "system": "TEXT", "object_type": "TEXT", "record_id": "TEXT", "target": "TEXT"}
    old_keys = {"identity": "TEXT", "key": "TEXT", "target": "TEXT"}
    warehouse.ensure_table("canonical.build_state", old_state)
    warehouse.ensure_table(MATCHES, old_matches)
    warehouse.ensure_table(KEYS, old_keys)
    warehouse.ensure_table(BASES, {"asset": "TEXT NOT NULL", "basis": "TEXT NOT NULL"})
    with warehouse.transaction() as tx:
        tx.append(BASES, [{"asset": "identity:customers", "basis": "v1"}, {"asset": "canonical/deals", "basis": "b"}])
        tx.append(BASES, [{"asset": "targets:customers", "basis": "t1"}])

    ensure_state(warehouse)

    assert not warehouse.has_table("canonical.build_state")
    assert warehouse.has_table(STATE) and warehouse.count(MATCHES) == 0 and warehouse.count(KEYS) == 0
    assert warehouse.query(f"SELECT asset FROM {BASES}") == [("canonical/deals",)]
    assert _kept_matches(warehouse, "customers", "v1") is None, "the old matches' version went with them"
    assert _keep_matches(warehouse, "customers", "v1", {PAYER: Match("crm:1", "stripe_company_link")}) == 1


def test_a_resolution_of_some_records_replaces_only_theirs(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    ensure_state(warehouse)
    first = {PAYER: Match("crm:1", "stripe_company_link"), ORGANIZATION: Match("crm:2", "zendesk_domain_names")}
    assert _keep_matches(warehouse, "customers", "v1", first) == 1
    moved = {PAYER: Match("crm:3", "stripe_company_link")}  # the payer matched again; the organization untouched
    assert (
        keep_matches(warehouse, "customers", {"identity": "v2"}, moved, _records([PAYER], "later"), only={PAYER, LATER})
        == 2
    )
    assert _changed_in(warehouse) == {PAYER: (True, 2), ORGANIZATION: (True, 1)}
    assert kept_matches(warehouse, "customers") == ({PAYER: moved[PAYER], ORGANIZATION: first[ORGANIZATION]}, 2)
    stamps = warehouse.query(f"SELECT record_id, loaded_at FROM {MATCHES} ORDER BY record_id")
    assert stamps == [("7", "stamp"), ("cus_1", "later")]
