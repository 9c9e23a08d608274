#!/usr/bin/env bash
# Retakes the README's pictures (docs/img/*.png) from a real `dagster dev`; installs Chromium and Playwright when missing.
source "$(dirname "$0")/_venv.sh" "[screenshots]"
exec .venv/bin/python scripts/screenshots.py "$@"
