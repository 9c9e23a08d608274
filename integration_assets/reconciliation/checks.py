"""Reconciliation asset checks (being built)."""

asset_checks: list = []
