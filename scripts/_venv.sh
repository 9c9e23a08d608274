# Sourced by the scripts here: makes .venv (Python 3.11) once and installs the project into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python_cmd=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python_cmd" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:-}"
