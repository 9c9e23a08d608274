# Sourced by the scripts here: makes .venv (Python 3.11) once and installs the project into it,
# again only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python_cmd=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python_cmd" -m venv .venv
fi
extras=${1:-}
stamp=".venv/.installed-$(sha256sum < pyproject.toml | cut -c1-16)${extras//[^a-z]/-}"

pip_quietly() {
  local output
  if ! output=$(.venv/bin/python -m pip install --quiet "$@" 2>&1); then
    echo "$output" >&2
    return 1
  fi
  # What is left is noise from this machine's pip configuration, or setuptools' editable-install notice.
  return 0
}

if [ ! -f "$stamp" ]; then
  pip_quietly --upgrade pip
  pip_quietly -e ".${extras}"
  touch "$stamp"
fi
