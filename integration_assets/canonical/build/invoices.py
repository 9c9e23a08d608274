"""Invoices and payments: one row per billing record, each naming its client by billing's customer id; a
record whose client is not resolved (unknown, or itself in review) goes to review instead."""

from __future__ import annotations

from integration_assets.canonical.build.records import Built, _Reader
from integration_assets.canonical.build.single import build_single


def build_invoices(reader: _Reader, built: Built) -> None:
    build_single(reader, built, "invoices", reader.matches("customers"))


def build_payments(reader: _Reader, built: Built) -> None:
    build_single(reader, built, "payments", reader.matches("customers"))
