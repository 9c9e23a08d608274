"""Contract, drift and volume checks on raw and canonical assets (being built)."""

asset_checks: list = []
