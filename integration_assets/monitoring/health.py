"""Connector health (being built)."""

assets: list = []
asset_checks: list = []
