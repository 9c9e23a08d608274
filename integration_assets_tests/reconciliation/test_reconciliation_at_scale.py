"""At scale 10,000 (about 100,000 records), every planted reconciliation defect is named by a failing check,
record by record, and no clean record is: judged on `ops.reconciliation_findings`, which holds every finding,
since the checks' metadata shows only a capped sample. One sync, canonical build and reconciliation run."""

from pathlib import Path

from dagster import DagsterInstance

from integration_assets.core.warehouse import Warehouse
from integration_assets.reconciliation.findings import FINDINGS_TABLE, open_findings
from integration_assets_tests.reconciliation.test_reconciliation import (
    CANONICAL_CHECKS,
    CHECK_OF_KIND,
    PROBLEMS_OF_KIND,
    by_name,
    run_everything,
)
from integration_assets_tests.testing.sandbox import FREE_PORTS
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox


def test_every_planted_defect_and_nothing_else_is_named_at_scale_10_000(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = generate(data, seed=11, scale=10_000, defect_rate=0.02)
    url = str(tmp_path / "wh.duckdb")
    with Sandbox(data, ports=FREE_PORTS) as sandbox, DagsterInstance.ephemeral() as instance:
        checks = by_name(run_everything(sandbox, url, instance))
    assert set(checks) == CANONICAL_CHECKS
    findings = open_findings(Warehouse.from_url(url))
    planted = [d for d in manifest["defects"] if d["expected"] == "reconciliation"]
    assert len(planted) > 50  # enough that the metadata's sample could not hold them all
    for name in CANONICAL_CHECKS:
        expected = {(d["system"], d["object_type"], str(d["id"])) for d in planted if CHECK_OF_KIND[d["kind"]] == name}
        mine = [f for f in findings if f["check_name"] == name]
        named = {(f["system"], f["object_type"], f["record_id"]) for f in mine}
        assert named == expected, (name, sorted(named ^ expected)[:20])
        check = checks[name]
        assert check.passed == (not expected)
        metadata = check.metadata
        assert metadata["problems"].value == len(mine)  # the table holds every finding the check counted
        assert (metadata["new_findings"].value, metadata["persisting_findings"].value) == (len(mine), 0)
        if expected:
            assert FINDINGS_TABLE in metadata["summary"].value
        for defect in (d for d in planted if CHECK_OF_KIND[d["kind"]] == name):
            problems = {f["problem"] for f in mine if f["record_id"] == str(defect["id"])}
            assert problems and problems <= PROBLEMS_OF_KIND[defect["kind"]], (defect, problems)
