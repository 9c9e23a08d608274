"""Write-back flows into the vendors: CRM → billing, billing → CRM, CRM → support, with their sync log, outbox,
circuit breaker and replay sensor. `assets`, `asset_checks` and `sensors` are what definitions.py wires."""

from integration_assets.writeback.assets import asset_checks, assets, flow_key
from integration_assets.writeback.sensors import sensors

__all__ = ["asset_checks", "assets", "flow_key", "sensors"]
