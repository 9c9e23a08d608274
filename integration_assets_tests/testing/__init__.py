"""What several tests share, imported as a module (never from a conftest): the project's paths and PostgreSQL
settings here; beside it a sandbox's inspection routes (`sandbox`), plain clients of its HubSpot and Stripe
(`hubspot`, `stripe`), the sync drills (`sync`), the write-back drills (`writeback`), the alert drills
(`alerts`) and the normalizer tests' shared pieces (`normalizers`)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DAGSTER", "POSTGRES", "PROJECT", "fresh_postgres_database"]

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
POSTGRES = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "test",
    "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
    "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
}
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server (its URL), dropped afterwards."""
    import psycopg2

    name = f"ia_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
