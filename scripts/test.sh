#!/usr/bin/env bash
# Command 2: set up (venv, packages, dbt manifest, Azurite, Chromium, PostgreSQL) and run the tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k sync
#   scripts/test.sh          every test (CI runs this), in parallel (pytest-xdist, TEST_WORKERS, default 3:
#                            the scenario tests wait on servers and sensors; 4 overloaded 2 cores, docs/testing.md)
#   scripts/test.sh --fast   all but the `scenario` tier (real services, built warehouse, long scenarios):
#                            no Azurite, Chromium or PostgreSQL needed; 2 workers (CPU-bound); tiers in docs/testing.md
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
args=()
for arg in "$@"; do
  if [ "$arg" = "--fast" ]; then fast=1; else args+=("$arg"); fi
done
scripts/setup.sh dev
# The tests write many small files and Dagster's SQLite storage syncs each event to disk: on a RAM-backed
# folder they wait less (tests/test_run_flow.py: 37.4 s on disk, 26.8 s in /dev/shm). Used when /dev/shm
# has 8 GB free; TEST_BASETEMP=DIR picks another folder (pytest empties it first).
basetemp="${TEST_BASETEMP:-}"
if [ -z "$basetemp" ] && [ -d /dev/shm ] && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')" -gt 8000000 ] 2>/dev/null; then
  basetemp="/dev/shm/retail-sales-pipeline-tests-$(id -u)"
fi
if [ -n "$basetemp" ]; then args=(--basetemp "$basetemp" ${args[@]+"${args[@]}"}); fi
if [ "$fast" = "1" ]; then
  workers="${TEST_WORKERS:-2}"
  echo "==> running the fast tier (-m 'not scenario', $workers workers)"
  exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup -m "not scenario" ${args[@]+"${args[@]}"}
fi
echo "==> Azurite (Azure Storage emulator, from npm)"
.venv/bin/python scripts/dev/ensure_azurite.py
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the UI screenshot test"
    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null))
  else
    echo "WARNING: chromium is not installed; the UI screenshot test will fail" >&2
  fi
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's postgresql for the team-server (Postgres instance) tests"
    (apt-get install -y -q postgresql >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null))
  else
    echo "WARNING: postgresql is not installed; the Postgres instance tests will fail" >&2
  fi
fi
workers="${TEST_WORKERS:-3}"
echo "==> running the tests ($workers workers)"
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup ${args[@]+"${args[@]}"}
