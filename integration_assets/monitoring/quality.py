"""Contract, drift and volume checks on raw and canonical assets, gathered for the Definitions.

Check names are fixed (`contract`, `drift`, `volume`): the alert sensors group check outcomes by them.
Freshness is Dagster's own FreshnessPolicy, attached to the assets themselves (monitoring/freshness.py).
"""

from integration_assets.monitoring.contract_checks import canonical_contract_checks, raw_contract_checks
from integration_assets.monitoring.drift import drift_checks
from integration_assets.monitoring.volume import volume_checks

__all__ = ["asset_checks"]

asset_checks = [*raw_contract_checks(), *drift_checks(), *volume_checks(), *canonical_contract_checks()]
