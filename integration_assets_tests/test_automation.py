"""Runs follow the data, not the clock: the automation conditions on a small graph shaped like ours, the
automation sensors of the code location, and a drill under the real `dagster-daemon`.

The drill: a first sync and reconciliation run by hand, then the daemon with automation as shipped (every
automation sensor running, no schedule on); deals are edited at the sandbox and the CRM streams synced with
`dagster asset materialize`. Canonical, write-back and reconciliation follow on their own, in runs tagged
with their flow and systems, and only what read the changed data runs again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRun,
    DataVersion,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    asset,
    asset_check,
    evaluate_automation_conditions,
    materialize,
    multi_asset,
)

from integration_assets.core.automation import (
    AUTOMATION_INTERVAL_ENV,
    DEFAULT_AUTOMATION_INTERVAL_SECONDS,
    automation_interval_seconds,
    flow_tags,
)
from integration_assets.core.dagster_adapter import InstigatorType
from integration_assets.core.policies import automation_condition
from integration_assets.definitions import defs
from integration_assets.systems import CATALOG
from integration_assets_tests.testing import DAGSTER
from integration_assets_tests.testing.sandbox import FREE_PORTS, put_faults
from integration_assets_tests.testing.sync import sandbox_env
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

FLOW_OF_SENSOR = {
    "sync_automation": "sync",
    "write_back_automation": "write_back",
    "reconciliation_automation": "reconciliation",
}
JOB_OF_FLOW = {"sync": "integration_sync", "write_back": "write_back", "reconciliation": "reconciliation"}


# -- the conditions, on a small graph shaped like ours ------------------------------------------------------
# source → canonical (a blocking contract, a data version, a build skipped when nothing changed) → write-back,
# and a cross-system check on the canonical asset

STATE: dict[str, object] = {}


@asset(key="src")
def src() -> MaterializeResult:
    return MaterializeResult(data_version=DataVersion(str(STATE["src"])))


@multi_asset(
    specs=[AssetSpec("canon", deps=["src"], automation_condition=automation_condition("canonical"), skippable=True)],
    check_specs=[AssetCheckSpec("contract", asset="canon", blocking=True)],
    can_subset=True,
)
def canon() -> Iterator[MaterializeResult | AssetCheckResult]:
    if STATE["crash"]:
        raise RuntimeError("the build crashed")
    yield MaterializeResult(asset_key="canon", data_version=DataVersion(str(STATE["canon"])))
    if STATE["rebuilt"]:  # a build skipped as unchanged records no verdict, as canonical/assets.py does
        yield AssetCheckResult(asset_key="canon", check_name="contract", passed=bool(STATE["contract"]))


@asset(key="wb", deps=["canon"], automation_condition=automation_condition("writeback"))
def wb() -> None:
    return None


@asset_check(asset="canon", name="recon", automation_condition=automation_condition("reconciliation"))
def recon() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


TOY = Definitions(assets=[src, canon, wb], asset_checks=[recon])
RECON = AssetCheckKey(AssetKey("canon"), "recon")
CONTRACT = AssetCheckKey(AssetKey("canon"), "contract")


class Toy:
    """Runs by hand and automation ticks on the small graph, as the daemon would see them."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None
        STATE.update(src="s1", canon="c1", contract=True, rebuilt=True, crash=False)

    def tick(self, at: datetime | None = None) -> set[str]:
        """What the automation would request now: asset keys, and `recon` for the check."""
        result = evaluate_automation_conditions(
            defs=TOY, instance=self.instance, cursor=self.cursor, evaluation_time=at or datetime.now(UTC)
        )
        self.cursor = result.cursor
        return {
            r.key.name if isinstance(r.key, AssetCheckKey) else r.key.to_user_string()
            for r in result.results
            if not r.true_subset.is_empty
        }

    def run(self, *keys: str, ok: bool = True, **state: object) -> None:
        STATE.update(state)
        selection = AssetSelection.assets(*keys).without_checks()
        if "canon" in keys:
            selection |= AssetSelection.checks(CONTRACT)  # ride-along: the check without a condition of its own
        result = materialize([src, canon, wb, recon], instance=self.instance, selection=selection, raise_on_error=False)
        assert result.success == ok

    def judge(self) -> None:
        result = materialize([src, canon, wb, recon], instance=self.instance, selection=AssetSelection.checks(RECON))
        assert result.success


def test_downstream_follows_changed_data_of_usable_inputs_only() -> None:
    with DagsterInstance.ephemeral() as instance:
        toy = Toy(instance)
        assert toy.tick() == set()  # the first tick only takes stock
        toy.run("src")
        assert toy.tick() == {"canon", "wb", "recon"}  # one sensor here: the three in one run, in order
        toy.run("canon")
        toy.run("wb")
        toy.judge()
        assert toy.tick() == set()

        toy.run("src")  # a sync that landed nothing: same data version
        toy.run("canon", rebuilt=False)  # a build skipped as unchanged: same data version, no verdict
        assert toy.tick() == set()

        toy.run("src", src="s2")
        assert toy.tick() == {"canon", "wb", "recon"}
        toy.run("canon", canon="c2", rebuilt=True, contract=False, ok=False)  # its blocking contract fails
        assert toy.tick() == set()
        toy.run("canon", rebuilt=False)  # skipped as unchanged: the refused data does not flow on
        assert toy.tick() == set()
        toy.run("canon", canon="c3", rebuilt=True, contract=True)  # fixed
        assert toy.tick() == {"wb", "recon"}
        toy.run("wb")
        toy.judge()
        assert toy.tick() == set()

        toy.run("canon", canon="c4", crash=True, ok=False)  # the input's run failed: wait for it
        assert toy.tick() == set()
        toy.run("canon", crash=False)
        assert toy.tick() == {"wb", "recon"}


def test_cross_system_checks_also_judge_once_a_day_whatever_changed() -> None:
    with DagsterInstance.ephemeral() as instance:
        toy = Toy(instance)
        toy.tick()
        toy.run("src")
        toy.run("canon")
        toy.judge()
        toy.tick()
        now = datetime.now(UTC)
        daily = now.replace(hour=5, minute=31, second=0, microsecond=0)
        daily += timedelta(days=1) if daily <= now else timedelta(0)
        assert toy.tick(daily - timedelta(minutes=2)) == set()
        assert toy.tick(daily) == {"recon"}  # 05:30 UTC passed: the check alone, nothing is rebuilt
        assert toy.tick(daily + timedelta(minutes=1)) == set()


# -- the code location's automation sensors -------------------------------------------------------------------


def _automation_sensors() -> dict[str, AutomationConditionSensorDefinition]:
    sensors = defs.get_repository_def().sensor_defs
    return {s.name: s for s in sensors if isinstance(s, AutomationConditionSensorDefinition)}


def test_each_flow_has_one_running_automation_sensor_tagging_runs_like_its_job() -> None:
    sensors = _automation_sensors()
    assert set(sensors) == set(FLOW_OF_SENSOR)  # no default sensor: nothing automated is left untargeted
    for name, sensor in sensors.items():
        flow = FLOW_OF_SENSOR[name]
        assert sensor.default_status == DefaultSensorStatus.RUNNING, name
        assert sensor.minimum_interval_seconds == automation_interval_seconds(), name
        assert (
            dict(sensor.run_tags)
            == flow_tags(flow, *CATALOG.roles)
            == dict(defs.resolve_job_def(JOB_OF_FLOW[flow]).tags)
        )


def test_every_automated_asset_and_check_is_targeted_by_exactly_one_sensor_of_its_flow() -> None:
    graph = defs.get_repository_def().asset_graph
    automated = {
        key for key in (*graph.get_all_asset_keys(), *graph.asset_check_keys) if graph.get(key).automation_condition
    }
    targets: dict[object, list[str]] = {}
    for name, sensor in _automation_sensors().items():
        for key in sensor.asset_selection.resolve(graph) | sensor.asset_selection.resolve_checks(graph):
            if key in automated:
                targets.setdefault(key, []).append(name)
    assert set(targets) == automated
    assert all(len(names) == 1 for names in targets.values()), targets
    by_sensor = {name: {k for k, names in targets.items() if name in names} for name in FLOW_OF_SENSOR}
    assert {k.to_user_string() for k in by_sensor["sync_automation"]} >= {s.key for s in CATALOG.streams}
    assert {k.to_user_string() for k in by_sensor["write_back_automation"]} == {
        "writeback/crm_to_billing",
        "writeback/billing_to_crm",
        "writeback/crm_to_support",
    }
    assert {(k.asset_key.to_user_string(), k.name) for k in by_sensor["reconciliation_automation"]} == {
        ("canonical/deals", "won_deals_invoiced"),
        ("canonical/payments", "invoices_paid_by_payments"),
        ("canonical/customers", "customer_master_agrees"),
        ("canonical/tickets", "tickets_known_people"),
    }


def test_the_sensor_interval_is_dagsters_default_unless_the_environment_says_otherwise() -> None:
    assert automation_interval_seconds({}) == DEFAULT_AUTOMATION_INTERVAL_SECONDS == 30
    assert automation_interval_seconds({AUTOMATION_INTERVAL_ENV: " 5 "}) == 5
    for wrong in ("0", "-3", "half a minute"):
        with pytest.raises(ValueError, match=AUTOMATION_INTERVAL_ENV):
            automation_interval_seconds({AUTOMATION_INTERVAL_ENV: wrong})


# -- the drill, under the real dagster-daemon -----------------------------------------------------------------

INTERVAL_S = 5  # the drill's automation tick (INTEGRATION_AUTOMATION_INTERVAL_SECONDS); users keep 30
FOLLOW_DEADLINE_S = 150
DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))
CRM_STREAMS = [stream.key for stream in CATALOG.streams if stream.role == "crm"]
DEALS = AssetKey(["canonical", "deals"])
# what reads canonical/deals or canonical/customers (rebuilt from edited deals), by the flow that runs it
FOLLOWERS = {
    "sync_automation": [DEALS, AssetKey(["canonical", "customers"])],
    "write_back_automation": [
        AssetKey(["writeback", f]) for f in ("crm_to_billing", "billing_to_crm", "crm_to_support")
    ],
}
FOLLOWING_CHECKS = [
    AssetCheckKey(DEALS, "won_deals_invoiced"),
    AssetCheckKey(AssetKey(["canonical", "customers"]), "customer_master_agrees"),
    AssetCheckKey(AssetKey(["canonical", "tickets"]), "tickets_known_people"),
]
# what reads none of the changed data: it must not run again
UNCHANGED = [AssetKey(["canonical", e]) for e in ("invoices", "payments", "tickets")]
UNCHANGED_CHECK = AssetCheckKey(AssetKey(["canonical", "payments"]), "invoices_paid_by_payments")


def _wait_until(what: str, ready: Callable[[], bool], seconds: float, daemon: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert daemon.poll() is None, "dagster-daemon exited"
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(1)


def _automation_ticked(instance: DagsterInstance) -> bool:
    """Each automation sensor has evaluated once (its first tick only takes stock of the instance)."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    ticked = {s.instigator_name for s in states if s.instigator_data and getattr(s.instigator_data, "cursor", None)}
    return set(FLOW_OF_SENSOR) <= ticked


def _run(instance: DagsterInstance, run_id: str | None) -> DagsterRun | None:
    return instance.get_run_by_id(run_id) if run_id else None


def _materialized_since(instance: DagsterInstance, key: AssetKey, since: float) -> DagsterRun | None:
    event = instance.get_latest_materialization_event(key)
    return _run(instance, event.run_id) if event is not None and event.timestamp > since else None


def _evaluated_since(instance: DagsterInstance, key: AssetCheckKey, since: float) -> DagsterRun | None:
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    if record is None or record.event is None or record.event.timestamp <= since:
        return None
    return _run(instance, record.run_id)


def _clock_ticked(start: float, end: float) -> bool:
    """Whether the sources' hourly tick (:00) or the reconciliation's daily one (05:30 UTC) fell in between."""
    daily = 5 * 3600 + 30 * 60
    return start // 3600 != end // 3600 or (start - daily) // 86400 != (end - daily) // 86400


def _launched_by(run: DagsterRun | None, sensor: str) -> bool:
    return run is not None and run.tags.get("dagster/sensor_name") == sensor


@pytest.fixture
def drill_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # the instance as shipped otherwise
    return home


def test_under_the_daemon_canonical_write_back_and_reconciliation_follow_the_sources(
    tmp_path: Path, drill_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    generate(data, seed=5, scale=20, defect_rate=0.0)
    warehouse_url = str(tmp_path / "warehouse.duckdb")
    with Sandbox(data, ports=FREE_PORTS) as sandbox, DagsterInstance.from_config(str(drill_home)) as instance:
        put_faults(sandbox, "zendesk: {incremental_lag_s: 0}")
        env = sandbox_env(sandbox, warehouse_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # a first sync, and a reconciliation, run by hand before the daemon starts
        for job_name in ("integration_sync", "reconciliation"):
            assert defs.resolve_job_def(job_name).execute_in_process(instance=instance).success, job_name

        daemon_env = {
            **os.environ,
            **env,
            "DAGSTER_HOME": str(drill_home),
            AUTOMATION_INTERVAL_ENV: str(INTERVAL_S),
            "INTEGRATION_EXECUTOR": "in_process",  # the drill is about what runs when, not how steps start
        }
        # a clock's tick is evaluated by the first sensor tick after it, which may come after `started`: a tick
        # counts from the daemon's start, not from the edit (the top of an hour fell between them in one CI run)
        daemon_started = time.time()
        daemon = subprocess.Popen(
            [DAEMON, "run", "-m", "integration_assets.definitions"],
            cwd=tmp_path, env=daemon_env, start_new_session=True,
            stdout=(tmp_path / "daemon.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_until("every automation sensor ticked once", lambda: _automation_ticked(instance), 120, daemon)
            started = time.time()
            edited = requests.post(
                f"{sandbox.url('hubspot')}/__sandbox__/mutate",
                json={"object_type": "deals", "count": 4, "seed": 3},
                timeout=10,
            ).json()["changed"]
            assert len(edited) == 4
            synced = subprocess.run(
                [DAGSTER, "asset", "materialize", "-m", "integration_assets.definitions",
                 "--select", ",".join(CRM_STREAMS)],
                cwd=tmp_path, env=daemon_env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]

            def followed() -> bool:
                assets = all(
                    _launched_by(_materialized_since(instance, key, started), sensor)
                    for sensor, keys in FOLLOWERS.items()
                    for key in keys
                )
                checks = all(
                    _launched_by(_evaluated_since(instance, key, started), "reconciliation_automation")
                    for key in FOLLOWING_CHECKS
                )
                return assets and checks

            _wait_until("canonical, write-back and reconciliation followed", followed, FOLLOW_DEADLINE_S, daemon)
            time.sleep(2 * INTERVAL_S)  # a couple more ticks: anything else that would run has been requested
            _wait_until(
                "the automation runs ended",
                lambda: not [r for r in instance.get_runs() if not r.is_finished and r.tags.get("integration/flow")],
                FOLLOW_DEADLINE_S,
                daemon,
            )
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)

        automated = [r for r in instance.get_runs() if r.tags.get("dagster/sensor_name") in FLOW_OF_SENSOR]
        assert automated
        for run in automated:  # each run says which flow and which systems it concerns
            flow = FLOW_OF_SENSOR[run.tags["dagster/sensor_name"]]
            assert {k: v for k, v in run.tags.items() if k in flow_tags(flow, *CATALOG.roles)} == flow_tags(
                flow, *CATALOG.roles
            )
            assert run.job_name == "__ASSET_JOB" and "dagster/schedule_name" not in run.tags
            if flow == "reconciliation":  # the cross-system checks: one step, with only the checks that were due
                steps = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps
                assert [step.key for step in steps] == ["cross_system_checks"]
        assert all(r.status.value == "SUCCESS" for r in automated), [(r.run_id, r.status) for r in automated]
        # what read none of the edited deals did not run again (unless a clock of the automation ticked meanwhile)
        if not _clock_ticked(daemon_started, time.time()):
            assert [k.to_user_string() for k in UNCHANGED if _materialized_since(instance, k, started)] == []
            assert _evaluated_since(instance, UNCHANGED_CHECK, started) is None
