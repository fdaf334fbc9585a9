#!/usr/bin/env bash
# Start the Dagster UI for the daily sales pipeline and keep it running (Linux/macOS; Windows:
# start_dagster.bat). Like start_dagster.bat it runs scripts/supervisor.py: `dagster dev -w
# workspace.yaml` (code location retail_sales) with the persistent DAGSTER_HOME dagster_home/,
# where the demo's run and the schedules' state live; restarted with backoff if it dies.
#   UI: http://127.0.0.1:3000, announced when it answers (DAGSTER_PORT=3001 scripts/start.sh for another port)
#   Logs: logs/supervisor.log, logs/dagster.log      Stop: Ctrl+C
# Extra arguments go to the supervisor (scripts/supervisor.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo ".venv not found in $PWD: run scripts/demo.sh (or scripts/setup.sh) first." >&2
  exit 78
fi
home="${DAGSTER_HOME:-$PWD/dagster_home}"
port="${DAGSTER_PORT:-3000}"
# The supervisor prints "Dagster UI ready: open http://127.0.0.1:$port" once the UI answers (20-60 s).
echo "==> starting Dagster (DAGSTER_HOME=$home); the URL is printed when the UI answers; Ctrl+C stops it"
exec .venv/bin/python scripts/supervisor.py --dagster-home "$home" --port "$port" "$@"
