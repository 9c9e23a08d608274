"""Contract, drift and volume checks and freshness policies, driven as users do: a sandbox over HTTP, a real
warehouse, `materialize` on one Dagster instance so every check has the history it judges against."""

from __future__ import annotations

from pathlib import Path

import requests
import yaml
from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance, materialize

from integration_assets.canonical.assets import assets as canonical_assets
from integration_assets.core.evidence import mask
from integration_assets.core.warehouse import Warehouse
from integration_assets.monitoring.drift import promised_fields
from integration_assets.monitoring.volume import judge_volume
from integration_assets.systems import CATALOG
from integration_assets_tests.testing import PROJECT
from integration_assets_tests.testing.sandbox import put_faults, sandbox_records
from integration_assets_tests.testing.sync import SOURCES, VENDOR_OF, checked_sources, materialized, resources
from integration_sandbox.server import Sandbox

DRIFT_PROFILE = PROJECT / "data" / "faults" / "drift.yaml"
NO_FAULTS = "seed: 1\n"
ROLE_OF = {vendor: role for role, vendor in VENDOR_OF.items()}
JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
SOURCE_NAMES = {s.key for s in CATALOG.streams}
FULL_REFRESH = {"ops": {a.op.name: {"config": {"full_refresh": True}} for a in SOURCES}}


CHECKED = checked_sources("contract", "drift", "volume")  # each stream with its quality checks, in its own step


def sync(sandbox: Sandbox, url: str, instance: DagsterInstance, *, full: bool = True):
    result = materialize(
        CHECKED,
        resources=resources(sandbox, url),
        instance=instance,
        run_config=FULL_REFRESH if full else None,
    )
    assert result.success
    return result


def outcomes(result, name: str) -> dict[str, object]:
    """Asset key → the evaluation of the check called `name` in this run."""
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations() if e.check_name == name}


def changes_of(evaluation) -> set[tuple[str, str, str, str]]:
    return {
        (c["field"], c["change"], c["promised_or_before"], c["observed"]) for c in evaluation.metadata["changes"].value
    }


def shapes(result) -> dict[str, dict[str, str]]:
    """Asset key → field → observed JSON types, from each source materialization's `payload_shape`."""
    return {
        key: {c.name: c.type for c in metadata["payload_shape"].schema.columns}
        for key, metadata in materialized(result).items()
    }


def expected_drift(profile: dict, clean: dict[str, dict[str, str]]) -> dict[str, set[tuple[str, str, str, str]]]:
    """The diff rows each drifted stream must show, derived from the fault profile and the clean shape."""
    expected: dict[str, set] = {}
    for vendor, block in profile.items():
        if not isinstance(block, dict) or not block.get("drift"):
            continue
        for object_type, drift in block["drift"].items():
            system = ROLE_OF[vendor]
            key = CATALOG.stream_of(system, object_type).key
            before, promised = clean[key], promised_fields(CATALOG.stream_of(system, object_type))
            nested = any(name.startswith("properties.") for name in before)  # HubSpot keeps values there

            def path(name: str, before=before, nested=nested) -> str:
                return name if name in before or not nested else f"properties.{name}"

            rows = expected.setdefault(key, set())
            for old, new in (drift.get("rename") or {}).items():
                rows.add((path(old), "removed", promised[path(old)], ""))
                rows.add((path(old).replace(old, new), "new", "", before[path(old)]))
            for name in drift.get("remove") or []:
                rows.add((path(name), "removed", promised[path(name)], ""))
            for name, kind in (drift.get("retype") or {}).items():
                rows.add((path(name), "retyped", promised[path(name)], kind))
            for name, value in (drift.get("add") or {}).items():
                rows.add((path(name), "new", "", JSON_TYPE[type(value)]))
    return expected


def test_drift_round_trip(sandbox: Sandbox, warehouse_url: str) -> None:
    profile = yaml.safe_load(DRIFT_PROFILE.read_text())
    with DagsterInstance.ephemeral() as instance:
        clean = sync(sandbox, warehouse_url, instance)
        for key, evaluation in outcomes(clean, "drift").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])
        for key, evaluation in outcomes(clean, "contract").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])
        expected = expected_drift(profile, shapes(clean))
        assert len(expected) == 3

        put_faults(sandbox, DRIFT_PROFILE.read_text())
        drifted = sync(sandbox, warehouse_url, instance)
        for key, evaluation in outcomes(drifted, "drift").items():
            assert evaluation.passed == (key not in expected), (key, evaluation.metadata["summary"])
            if key in expected:
                assert changes_of(evaluation) == expected[key]
                breaking = any(change != "new" for _, change, _, _ in expected[key])
                assert evaluation.severity == (AssetCheckSeverity.ERROR if breaking else AssetCheckSeverity.WARN)
                assert evaluation.metadata["fields_new"].value == sum(1 for r in expected[key] if r[1] == "new")
                assert "| field | change | promised_or_before | observed |" in evaluation.metadata["records"].value
        contracts = outcomes(drifted, "contract")
        for key in SOURCE_NAMES:
            assert contracts[key].passed == (key not in expected), (key, contracts[key].metadata["summary"])

        # an incremental run fetching nothing keeps judging the last known (drifted) shape
        quiet = sync(sandbox, warehouse_url, instance, full=False)
        fetched = {key: metadata["fetched"].value for key, metadata in materialized(quiet).items()}
        for key, evaluation in outcomes(quiet, "drift").items():
            if key in expected and fetched[key] == 0:
                assert not evaluation.passed and changes_of(evaluation) == expected[key], key

        put_faults(sandbox, NO_FAULTS)
        restored = sync(sandbox, warehouse_url, instance)
        for key, evaluation in outcomes(restored, "drift").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])
        for key, evaluation in outcomes(restored, "contract").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])


def test_a_run_that_fetched_only_deletions_is_not_drift(sandbox: Sandbox, tmp_path: Path) -> None:
    """Archived records carry no shape worth judging: a run that fetched only those keeps the last verdict."""
    url = str(tmp_path / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        sync(sandbox, url, instance)
        live = [r for r in sandbox_records(sandbox, "hubspot", "contacts") if not r.get("archived")]
        for record in live[:3]:
            response = requests.delete(
                f"{sandbox.url('hubspot')}/__sandbox__/records/contacts/{record['id']}", timeout=10
            )
            assert response.status_code < 300, response.text
        quiet = sync(sandbox, url, instance, full=False)
        assert materialized(quiet)["crm/contacts"]["fetched"].value >= 3
        for key, evaluation in outcomes(quiet, "drift").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])


def test_volume_drop_fails_and_steady_volume_passes(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "warehouse.duckdb")
    # HubSpot shows an archive in its next listing (Zendesk's exports hold back the last minute of changes)
    stream = next(s for s in CATALOG.streams if s.key == "crm/contacts")
    vendor = VENDOR_OF[stream.role]
    with DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            steady = sync(sandbox, url, instance)
            for key, evaluation in outcomes(steady, "volume").items():
                assert evaluation.passed, (key, evaluation.metadata["summary"])
        before = materialized(steady)[stream.key]["live_rows"].value
        assert before > 0
        live = [r for r in sandbox_records(sandbox, vendor, stream.object_type) if not r.get("archived")]
        for record in live[: int(len(live) * 0.8)]:
            response = requests.delete(
                f"{sandbox.url(vendor)}/__sandbox__/records/{stream.object_type}/{record['id']}", timeout=10
            )
            assert response.status_code < 300, response.text
        dropped = sync(sandbox, url, instance)
        after = materialized(dropped)[stream.key]["live_rows"].value
        assert after < before * 0.5
        for key, evaluation in outcomes(dropped, "volume").items():
            assert evaluation.passed == (key != stream.key), (key, evaluation.metadata["summary"])
        failed = outcomes(dropped, "volume")[stream.key]
        assert failed.metadata["live_rows"].value == after
        assert failed.metadata["median_live_rows"].value == before


def test_volume_judgement() -> None:
    assert judge_volume(0, [], 0.5)[0] is False
    assert judge_volume(0, [10, 10], 0.5)[0] is False
    assert judge_volume(4, [10, 10, 9], 0.5)[0] is False
    assert judge_volume(5, [10, 10, 9], 0.5)[0] is True
    assert judge_volume(3, [], 0.5)[0] is True


def test_canonical_contract_blocks_corrupted_tables_and_masks_personal_data(sandbox: Sandbox, tmp_path: Path) -> None:
    url = str(tmp_path / "warehouse.duckdb")
    contracts = [key for asset in canonical_assets for key in asset.check_keys if key.name == "contract"]
    everything = [*SOURCES, *canonical_assets]
    with DagsterInstance.ephemeral() as instance:
        built = materialize(everything, resources=resources(sandbox, url), instance=instance)
        assert built.success
        for key, evaluation in outcomes(built, "contract").items():
            assert evaluation.passed, (key, evaluation.metadata["summary"])

        warehouse = Warehouse.from_url(url)
        person_id, email = warehouse.query(
            "SELECT person_id, email FROM canonical.contacts WHERE email IS NOT NULL AND NOT is_deleted LIMIT 1"
        )[0]
        invoice_id = warehouse.query("SELECT invoice_id FROM canonical.invoices WHERE NOT is_deleted LIMIT 1")[0][0]
        with warehouse.transaction() as tx:  # a mapping bug writes the email as the id; a currency in lower case
            tx.execute("UPDATE canonical.contacts SET person_id = email WHERE person_id = ?", [person_id])
            tx.execute("UPDATE canonical.invoices SET currency = lower(currency) WHERE invoice_id = ?", [invoice_id])

        checked = materialize(
            everything,
            resources=resources(sandbox, url),
            instance=instance,
            selection=AssetSelection.checks(*contracts),
            raise_on_error=False,  # a failing blocking check fails its step: that is the point
        )
        assert not checked.get_asset_materialization_events()  # the checks ran alone on the corrupted tables
        verdicts = outcomes(checked, "contract")
        assert {k for k, e in verdicts.items() if not e.passed} == {"canonical/customers", "canonical/invoices"}
        customers, invoices = verdicts["canonical/customers"], verdicts["canonical/invoices"]
        assert customers.metadata["failures_canonical_contacts_person_id"].value == 1
        assert invoices.metadata["failures_canonical_invoices_currency"].value == 1
        assert invoice_id in invoices.metadata["sample_ids"].value
        shown = " ".join(str(entry.value) for entry in customers.metadata.values())
        assert email not in shown and mask(email) in {r.data["id"] for r in customers.metadata["records"].records}
        assert "str_matches" in customers.metadata["failures_by_check"].value


def test_checks_blocking_and_freshness_from_the_definitions() -> None:
    from integration_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    specs = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k) for k in graph.asset_check_keys}
    for stream in CATALOG.streams:
        for name in ("contract", "drift", "volume"):
            assert (stream.key, name) in specs
            assert not specs[(stream.key, name)].blocking
    for entity in ("customers", "deals", "invoices", "payments", "tickets"):
        assert specs[(f"canonical/{entity}", "contract")].blocking
    windows = {
        key.to_user_string(): graph.get(key).freshness_policy
        for key in graph.get_all_asset_keys()
        if key.path[0] == "canonical" or key.to_user_string() in SOURCE_NAMES
    }
    assert set(windows) >= SOURCE_NAMES | {"canonical/customers", "canonical/customer_360"}
    for key, policy in windows.items():
        assert policy is not None and policy.warn_window is not None, key
        assert policy.warn_window < policy.fail_window, key


def test_raw_contract_sample_masks_personal_data(sandbox: Sandbox, tmp_path: Path) -> None:
    """A vendor sending an email as a list breaks the promise; the sample shows the list masked."""
    url = str(tmp_path / "warehouse.duckdb")
    stream = next(s for s in CATALOG.streams if s.key == "crm/contacts")
    vendor = VENDOR_OF[stream.role]
    record = next(
        r
        for r in sandbox_records(sandbox, vendor, stream.object_type)
        if r["properties"].get("email") and not r.get("archived")
    )
    email = record["properties"]["email"]
    record["properties"]["email"] = [email]
    response = requests.post(f"{sandbox.url(vendor)}/__sandbox__/records/{stream.object_type}", json=record, timeout=10)
    assert response.status_code < 300, response.text
    asset = next(a for a in checked_sources("contract") if a.key == stream.asset_key)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [asset],
            resources=resources(sandbox, url),
            instance=instance,
            run_config={"ops": {asset.op.name: {"config": {"full_refresh": True}}}},
        )
    contract = outcomes(result, "contract")[stream.key]
    assert not contract.passed
    assert contract.metadata["failed_records"].value == 1
    assert contract.metadata["sample_ids"].value == str(record["id"])
    shown = " ".join(str(entry.value) for entry in contract.metadata.values())
    assert email not in shown and mask([email]) in {r.data["value"] for r in contract.metadata["records"].records}


MASK_PROBE = """
import sys
from integration_assets.core.evidence import mask
from integration_assets_tests.testing import PROJECT
print(mask(sys.argv[1]))
"""


def _mask_in_process(value: str, env: dict[str, str]) -> str:
    """`mask` as a fresh process computes it (a later run of the code location)."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("INTEGRATION_MASK_KEY", "DAGSTER_HOME")}
    done = subprocess.run(
        [sys.executable, "-c", MASK_PROBE, value], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_mask_is_keyed_and_stable_across_runs(tmp_path: Path) -> None:
    import hashlib
    import hmac

    email = "jane.doe@example.com"
    unsalted = "•••" + hashlib.sha256(email.encode()).hexdigest()[:6]
    home = {"DAGSTER_HOME": str(tmp_path / "home")}
    first = _mask_in_process(email, home)
    # a guess cannot be confirmed by hashing it: the fingerprint is keyed
    assert first != unsalted and first.startswith("•••") and len(first) == 9
    key_file = tmp_path / "home" / "integration_mask.key"
    key = key_file.read_text().strip()
    assert len(key) == 64 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert first == "•••" + hmac.new(key.encode(), email.encode(), hashlib.sha256).hexdigest()[:6]
    # the next run reads the same key: the same fingerprint; another deployment's key gives another
    assert _mask_in_process(email, home) == first
    assert _mask_in_process(email, {"DAGSTER_HOME": str(tmp_path / "other")}) != first
    # a key from the environment wins over the stored one
    configured = _mask_in_process(email, {**home, "INTEGRATION_MASK_KEY": "k" * 32})
    assert configured == "•••" + hmac.new(b"k" * 32, email.encode(), hashlib.sha256).hexdigest()[:6]


def test_markdown_footer_tells_what_sample_ids_hold() -> None:
    from integration_assets.core.evidence import SAMPLE_IDS, check_result

    records = [{"id": f"r{n}"} for n in range(60)]
    result = check_result(passed=False, system="crm", summary="60 bad", next_action="fix", records=records, limit=50)
    table = result.metadata["records"].value
    assert "… and 10 more" in table and f"the first {SAMPLE_IDS} ids" in table and "every id" not in table
    assert result.metadata["sample_ids"].value.count(",") == SAMPLE_IDS - 1
