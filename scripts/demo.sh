#!/usr/bin/env bash
# Command 1: set up and run the whole daily flow end to end on local sample data (no cloud account).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
echo "==> generating sample data (landing folder under \${DATA_DIR:-data}/landing)"
.venv/bin/python scripts/generate_sample_data.py --days "${DEMO_DAYS:-14}" --rows-per-day "${DEMO_ROWS_PER_DAY:-2000}"
echo "==> running the daily flow"
.venv/bin/python scripts/run_flow.py "$@"
