"""Sensors that turn failed checks and runs into alerts (being built)."""

sensors: list = []
