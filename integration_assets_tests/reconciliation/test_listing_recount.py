"""Stripe has no count, so `complete_against_vendor` lists every id: one call per 100 records at the vendor's
rate limit. After a sync that read only changes it lists again only when its last listing is older than
`listing_recount_hours`; a full listing counts every time, and count-only vendors (HubSpot) count every run."""

from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from integration_assets.core.config import config_path
from integration_assets.core.http import ApiClient
from integration_assets.core.stream_check import Landed, StreamCheckRun
from integration_assets.core.sync import SyncReport
from integration_assets.core.warehouse import Warehouse
from integration_assets.reconciliation.completeness import CompletenessCheck
from integration_assets.systems import CATALOG
from integration_assets.systems.billing import totals
from integration_assets_tests.testing.sync import checked_sources, resources
from integration_sandbox.server import Sandbox

COMPLETE = "complete_against_vendor"
INVOICES, COMPANIES = AssetKey(["billing", "invoices"]), AssetKey(["crm", "companies"])
SOURCES = checked_sources(COMPLETE)


def _counted(result) -> dict[str, dict]:
    """Asset key → the metadata of its completeness evaluation in this run (absent: skipped)."""
    return {
        e.asset_key.to_user_string(): e.metadata
        for e in result.get_asset_check_evaluations()
        if e.check_name == COMPLETE
    }


def _skipped_messages(instance: DagsterInstance, result) -> list[str]:
    """What the run's log says of checks it did not evaluate."""
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return [m for m in messages if "not evaluated in this run" in m]


def _sync(sandbox: Sandbox, url: str, instance: DagsterInstance, **run_config):
    result = materialize(
        SOURCES, selection=[INVOICES, COMPANIES], resources=resources(sandbox, url), instance=instance, **run_config
    )
    assert result.success
    return result


def test_a_listing_is_not_repeated_after_an_incremental_sync_until_it_is_due(
    sandbox: Sandbox, tmp_path: Path, config_dir: Path
) -> None:
    url = str(tmp_path / "wh.duckdb")
    with DagsterInstance.ephemeral() as instance:
        first = _counted(_sync(sandbox, url, instance))
        assert first["billing/invoices"]["counted_by"].value == "listing"
        # the full pass listed every id: the check compares that list with what landed, without a call of its own
        assert first["billing/invoices"]["listed_by"].value == "the sync of this step"
        assert first["billing/invoices"]["counting_api_calls"].value == 0
        live = Warehouse.from_url(url).query("SELECT count(*) FROM raw.billing_invoices WHERE NOT is_deleted")[0][0]
        assert first["billing/invoices"]["vendor_total"].value == live > 0
        assert first["crm/companies"]["counted_by"].value == "count"
        assert first["crm/companies"]["counting_api_calls"].value == 1

        incremental = _sync(sandbox, url, instance)
        counted = _counted(incremental)
        assert "billing/invoices" not in counted, "listed again although the last listing is minutes old"
        assert counted["crm/companies"]["counted_by"].value == "count"
        (message,) = _skipped_messages(instance, incremental)
        assert "billing/invoices" in message and "listing_recount_hours" in message

        full = {"ops": {"billing__invoices": {"config": {"full_refresh": True}}}}
        assert "billing/invoices" in _counted(_sync(sandbox, url, instance, run_config=full))

        packaged = config_path("monitoring.yaml").read_text()
        assert "listing_recount_hours: 24" in packaged
        (config_dir / "monitoring.yaml").write_text(
            packaged.replace("listing_recount_hours: 24", "listing_recount_hours: 0")
        )
        due = _sync(sandbox, url, instance)
        assert _counted(due)["billing/invoices"]["counted_by"].value == "listing"
        assert _counted(due)["billing/invoices"]["listed_by"].value == "this check"
        assert _counted(due)["billing/invoices"]["counting_api_calls"].value >= 1
        assert not _skipped_messages(instance, due)

        # a listing that finds a record missing is repeated on every run until it passes again
        warehouse = Warehouse.from_url(url)
        lost = warehouse.query("SELECT min(id) FROM raw.billing_invoices WHERE NOT is_deleted")[0][0]
        with warehouse.transaction() as tx:
            tx.execute("DELETE FROM raw.billing_invoices WHERE id = ?", [lost])
        missing = _counted(_sync(sandbox, url, instance))["billing/invoices"]
        assert missing["missing_records"].value == 1 and lost in missing["summary"].value
        (config_dir / "monitoring.yaml").unlink()  # back to the packaged 24 h
        again = _counted(_sync(sandbox, url, instance))
        assert again["billing/invoices"]["missing_records"].value == 1, "a failing listing is never skipped"


def test_a_listing_handed_over_by_the_sync_still_names_what_did_not_land(
    sandbox: Sandbox, tmp_path: Path, config_dir: Path
) -> None:
    """The sync's own list is compared with the raw table as the check's listing would be: a record the pass
    listed that is not in the table is missing, a live row it did not list is extra, each named."""
    url = str(tmp_path / "wh.duckdb")
    with DagsterInstance.ephemeral() as instance:
        _sync(sandbox, url, instance)
        warehouse = Warehouse.from_url(url)
        ids = [r[0] for r in warehouse.query("SELECT id FROM raw.billing_invoices WHERE NOT is_deleted ORDER BY id")]
        listed = frozenset([*ids[1:], "in_listed_but_never_landed"])  # listed a record that did not land; not ids[0]
        stream = CATALOG.stream_of("billing", "invoices")
        report = SyncReport(stream=stream.key, mode="full", listed=listed)

        def no_calls() -> ApiClient:
            raise AssertionError("the check called the vendor although the sync had listed every id")

        run = StreamCheckRun(stream, warehouse, instance, "run", no_calls, totals.live_total, Landed(report, {}))
        result = CompletenessCheck().evaluate(run)
    assert not result.passed
    assert result.metadata["missing_records"].value == 1 and result.metadata["extra_records"].value == 1
    assert "in_listed_but_never_landed" in result.metadata["summary"].value
    assert result.metadata["counting_api_calls"].value == 0
