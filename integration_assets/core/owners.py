"""Who owns what, as Dagster shows it: the teams of `monitoring.yaml`'s `owners`, the same teams alerts name.

Dagster takes owners as `team:<name>` (or an e-mail address); every asset, job, schedule and sensor is
declared with the team of the system it concerns, or the default team when it concerns several. Two kinds take
no owners in Dagster 1.13 and show none: asset checks (the UI shows their asset's) and the automation
condition sensors (`sync_automation`, `write_back_automation`, `reconciliation_automation`).
The UI reads owners when the code location loads: reload it after editing `owners`; alerts read them each tick.
"""

from __future__ import annotations

from integration_assets.core.monitoring_config import load_monitoring

__all__ = ["team_owners"]


def team_owners(system: str | None = None) -> list[str]:
    """`["team:<name>"]` for the owning team of `system` (a catalog role), the default team for None."""
    return [f"team:{load_monitoring().owners.of(system)}"]
