#!/usr/bin/env bash
# Quick start:  ./run.sh            runs the whole workflow (extra arguments go to snakemake)
#               ./run.sh test       runs the test suite (extra arguments go to pytest)
# Creates .venv with the pinned dependencies on first use, and again only when the pins change.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
pins=$(cat requirements.txt requirements-backends.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.pins 2>/dev/null)" != "$pins" ]; then
  echo "[run.sh] installing the pinned dependencies into .venv (once per change of pins)"
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-backends.txt -c constraints.txt
  # compat: this folder goes on the path as it is, where Snakemake finds the console's logger
  # plugin (snakemake_logger_plugin_mnistbench; plugins installed otherwise in edit mode it misses).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
    --config-settings editable_mode=compat
  echo "$pins" > .venv/.pins
fi

if [ "${1:-}" = test ]; then
  shift
  bash tests/system-packages.sh
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m snakemake "$@"
