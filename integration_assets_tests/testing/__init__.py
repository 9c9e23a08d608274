"""What several tests share, imported as a module (never from a conftest): the project's paths and PostgreSQL
settings here; beside it a sandbox's inspection routes (`sandbox`), plain clients of its HubSpot and Stripe
(`hubspot`, `stripe`), the sync drills (`sync`), the write-back drills (`writeback`), the alert drills
(`alerts`) and the normalizer tests' shared pieces (`normalizers`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["DAGSTER", "POSTGRES", "PROJECT"]

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
POSTGRES = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "test",
    "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
    "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
}
