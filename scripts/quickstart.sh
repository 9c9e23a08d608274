#!/usr/bin/env bash
# Sets everything up, runs the integration end to end against the local sandbox, prints a report.
source "$(dirname "$0")/_venv.sh" ""
exec .venv/bin/python -m integration_assets.quickstart "$@"
