"""The warehouse: the same tables and the same write rules on DuckDB (a file, the default) and PostgreSQL.

Why it looks the way it does:

- Raw tables keep each record exactly as the vendor sent it, keyed by the vendor's id, with a `version`
  (epoch ms of the record's last change). An upsert never replaces a newer version with an older one, so
  retries, overlapping incremental windows and out-of-order pages can never roll data back.
- A stream's cursor commits in the same transaction as the rows it covers: a run killed at any point
  resumes from a cursor that never runs ahead of stored data.
- DuckDB admits one writing process per file, and a process holding a read-write connection stops every
  other process from opening the file at all. Dagster's default executor runs each step in its own
  process, so no connection is ever kept between calls: every transaction and every read takes an
  exclusive `fcntl.flock` on `<file>.lock`, opens the file, works, closes and releases. PostgreSQL gets a
  fresh connection per call too, which keeps the object safe to pickle into step processes.
- Bulk writes are set-based: a registered pandas frame on DuckDB, `execute_values` pages on PostgreSQL,
  each with one `INSERT … ON CONFLICT (id) DO UPDATE … WHERE <newer>` statement.
- Identifiers cannot be bound as parameters, so table and column names are validated against a strict
  pattern and quoted; every value is bound.

SQL given to `query`, `frame` and `Transaction.execute` uses `?` placeholders on both backends (translated
to `%s` for psycopg2, outside string literals), so callers write one dialect-neutral statement.
"""

from integration_assets.core.warehouse.handle import NestedAccessError, Warehouse, is_postgres_url
from integration_assets.core.warehouse.handle import _exclusive as _exclusive  # benchmarks' prototypes use it
from integration_assets.core.warehouse.rows import RawRow, UnstorablePayload, UpsertResult, json_value, payload_text
from integration_assets.core.warehouse.sql import (
    Backend,
    InvalidIdentifier,
    column_definitions,
    json_path,
    validate_table,
)
from integration_assets.core.warehouse.tables import API_CALLS_COLUMNS, BASE_SCHEMAS, CURSORS_COLUMNS, RAW_COLUMNS
from integration_assets.core.warehouse.transaction import Transaction

__all__ = [
    "API_CALLS_COLUMNS",
    "BASE_SCHEMAS",
    "CURSORS_COLUMNS",
    "RAW_COLUMNS",
    "Backend",
    "InvalidIdentifier",
    "NestedAccessError",
    "RawRow",
    "Transaction",
    "UnstorablePayload",
    "UpsertResult",
    "Warehouse",
    "column_definitions",
    "is_postgres_url",
    "json_path",
    "json_value",
    "payload_text",
    "validate_table",
]
