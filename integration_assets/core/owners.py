"""Who owns what, as Dagster shows it: the teams of `monitoring.yaml`'s `owners`, the same teams alerts name.

Dagster takes owners as `team:<name>` (or an e-mail address); every asset, job, sensor and schedule is
declared with the team of the system it concerns, or the default team when it concerns several.
"""

from __future__ import annotations

from integration_assets.core.monitoring_config import load_monitoring

__all__ = ["team_owners"]


def team_owners(system: str | None = None) -> list[str]:
    """`["team:<name>"]` for the owning team of `system` (a catalog role), the default team for None."""
    return [f"team:{load_monitoring().owners.of(system)}"]
