#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh: the venv, the pinned packages, the dbt manifest.
# Usage: scripts/setup.sh [dev]   (dev also installs the test requirements)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt
echo "==> installing $requirements"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
# setuptools warns about every editable install ("Editable installation ... !!"): nothing to act on.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "==> preparing the dbt manifest"
.venv/bin/python scripts/prepare_dbt.py
