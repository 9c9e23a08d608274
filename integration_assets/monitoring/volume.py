"""Volume: live rows of a raw table against the median of its last N materializations.

A vendor that suddenly lists far fewer records (an expired scope, a filter changed on their side, a mass
deletion) shows here before anyone misses a customer. The median resists one odd run; zero is always wrong.
"""

from statistics import median

from dagster import AssetCheckResult

from integration_assets.core.catalog import StreamSpec
from integration_assets.core.evidence import check_result
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.stream_check import StreamCheck, StreamCheckRun
from integration_assets.monitoring.history import materializations

__all__ = ["LIVE_ROWS", "VolumeCheck", "judge_volume"]

LIVE_ROWS = "live_rows"  # numeric metadata of every source materialization: rows not deleted at the source


def judge_volume(current: float, history: list[float], drop_share: float) -> tuple[bool, str]:
    """(passed, why) for live rows now against earlier counts (newest first)."""
    if current <= 0:
        return False, "no live rows"
    if not history:
        return True, "no earlier materialization to compare with"
    usual = median(history)
    if current < drop_share * usual:
        return False, f"{current:g} live rows, below {drop_share:.0%} of the median {usual:g} of the last runs"
    return True, f"{current:g} live rows against a median of {usual:g}"


class VolumeCheck(StreamCheck):
    name = "volume"

    def description(self, stream: StreamSpec) -> str:
        return (
            f"Live rows of `{stream.raw_table}` against the median of its last materializations (`drift."
            "history_runs` in monitoring.yaml): zero, or a drop below `drift.volume_drop_share`, fails."
        )

    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult:
        stream, settings = run.stream, load_monitoring().drift
        counts: list[float] = []
        if run.landed is not None:  # what the sync just counted (the event log may not hold it yet)
            counts.append(float(run.landed.metadata[LIVE_ROWS]))
        for materialization in materializations(run.instance, stream.asset_key):
            live = materialization.number(LIVE_ROWS)
            if live is not None and materialization.run_id != run.run_id:
                counts.append(live)
                if len(counts) > settings.history_runs:
                    break
        if not counts:
            return check_result(
                passed=True,
                system=stream.role,
                summary=f"{stream.key}: not materialized with a live row count yet",
                next_action="",
            )
        current, history = counts[0], counts[1:]
        passed, why = judge_volume(current, history, settings.volume_drop_share)
        return check_result(
            passed=passed,
            system=stream.role,
            summary=f"{stream.key}: {why}",
            next_action=f"Compare the records {stream.role} lists for {stream.object_type} with the raw table "
            f"`{stream.raw_table}`: check the credential's scopes and the vendor's status before trusting the drop",
            records=[] if passed else [{"id": stream.key, "live_rows": current, "median": median(history or [0])}],
            columns=("id", "live_rows", "median"),
            counts={
                LIVE_ROWS: current,
                "median_live_rows": median(history) if history else current,
                "runs_compared": len(history),
            },
        )
