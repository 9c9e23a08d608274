"""The schemas and the tables every sync writes, declared once in portable types for both backends."""

BASE_SCHEMAS = ("raw", "canonical", "ops")

# Portable column types: `ensure_table` maps them to each backend's spelling.
RAW_COLUMNS: dict[str, str] = {
    "id": "TEXT NOT NULL",
    "version": "BIGINT NOT NULL",
    "payload": "JSON NOT NULL",
    "is_deleted": "BOOLEAN NOT NULL DEFAULT FALSE",
    "loaded_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
}
CURSORS_COLUMNS: dict[str, str] = {
    "stream": "TEXT NOT NULL",
    "value": "TEXT NOT NULL",
    "updated_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
}
API_CALLS_COLUMNS: dict[str, str] = {
    "called_at": "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "run_id": "TEXT",
    "connector": "TEXT",
    "system": "TEXT",
    "method": "TEXT",
    "endpoint": "TEXT",
    "status": "INTEGER",
    "latency_ms": "DOUBLE",
    "request_bytes": "BIGINT",
    "response_bytes": "BIGINT",
    "attempt": "INTEGER",
    "error_category": "TEXT",
    "request_id": "TEXT",
}
