#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh: the venv, the locked packages, the dbt manifest.
# Usage: scripts/setup.sh [dev]   (dev also installs the test requirements)
# Each phase prints its time; the packages come from requirements.lock (hashes, Linux and Windows)
# through uv (scripts/install_packages.py; pip with --require-hashes where uv cannot be had).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
# Python 3.11 or newer, checked before anything is created or installed.
if ! found=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
  echo "Python not found ('$PYTHON'): install Python 3.11 or newer, or set PYTHON=/path/to/python3.11" >&2
  exit 78
fi
case "$found" in
  3.1[1-9]|3.[2-9][0-9]) ;;
  *) echo "Python 3.11 or newer is needed; '$PYTHON' is Python $found." >&2
     echo "Install Python 3.11+ and run again with PYTHON=/path/to/python3.11 (a .venv made by an older Python: delete it first)." >&2
     exit 78 ;;
esac
echo "==> Python $found ($PYTHON)"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
  echo "    done in $((SECONDS - started)) s"
fi
.venv/bin/python scripts/install_packages.py ${1:+--$1}
echo "==> preparing the dbt manifest"
phase=$SECONDS
.venv/bin/python scripts/prepare_dbt.py
echo "    done in $((SECONDS - phase)) s"
echo "==> set-up done in $((SECONDS - started)) s"
