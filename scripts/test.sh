#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (lint, format, tests) on real HTTP, DuckDB and PostgreSQL.
source "$(dirname "$0")/_venv.sh" "[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
