"""Run a pipeline job once, in this process, and print what it produced (README command 1).

Runs against the Dagster instance in DAGSTER_HOME when set (so the run shows in the UI
later), else an ephemeral one. Prints each step's outcome, each Tableau extract's path and
row counts, and the first rows of the executive table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bat_file_data_refresh" / "python"))
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_JOB = "daily_sales_flow_job"
EXECUTIVE_TABLE = "qi_executive_daily_sales"


def _instance():
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    from supervisor import prepare_home  # scripts/ is on sys.path when run as a script

    prepare_home(Path(home))
    return dg.DagsterInstance.get()


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _sync_ops_config(job, as_of: str) -> dict:
    """Run config giving every sync step of the job the same as_of (a missed day, a benchmark's fixed date)."""
    from pipeline_common.config import load_pipeline_config

    config = load_pipeline_config()
    sync_assets = {config.asset_name(entry.market, entry.dataset) for entry in config.datasets}
    ops: dict = {}
    for node in job.graph.node_dict.values():
        if node.name in sync_assets:
            ops[node.name] = {"config": {"as_of": as_of}}
    return ops


def _print_exports(result) -> None:
    from pipeline_common.config import load_pipeline_config

    export_assets = {export.asset for export in load_pipeline_config().exports}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        key = materialization.asset_key.to_user_string()
        if key not in export_assets:
            continue
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        rows = {name.removeprefix("rows_"): value for name, value in metadata.items() if name.startswith("rows_")}
        print(f"  {key}: {metadata.get('hyper_path')}  rows={rows}  published={metadata.get('published')}")


def _print_executive_rows(limit: int) -> None:
    import duckdb

    from pipeline_common.settings import duckdb_path

    path = duckdb_path()
    if not path.exists():
        print(f"(no warehouse at {path})")
        return
    with duckdb.connect(str(path), read_only=True) as con:
        frame = con.sql(
            f"select * from {EXECUTIVE_TABLE} order by order_date desc, market limit {int(limit)}"
        )
        print(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=DEFAULT_JOB, help=f"job to run (default {DEFAULT_JOB})")
    parser.add_argument("--rows", type=int, default=8, help="executive rows to print")
    parser.add_argument("--log-level", default="INFO", help="console log level of the run (default INFO)")
    parser.add_argument("--as-of", type=_iso_date, help="last file date the syncs take, YYYY-MM-DD (default: today, London)")
    args = parser.parse_args(argv)

    from orchestration.definitions import defs

    job = defs.resolve_job_def(args.job)
    started = time.monotonic()
    with _instance() as instance:
        run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
        if args.as_of:
            run_config["ops"] = _sync_ops_config(job, args.as_of.isoformat())
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
        elapsed = time.monotonic() - started
        print(f"\n{args.job}: {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f} s (run {result.run_id})")
        for event in result.all_events:
            if event.is_step_failure:
                print(f"  FAILED step {event.step_key}: {event.event_specific_data.error.message.strip()[:500]}")
        print("\nTableau extracts:")
        _print_exports(result)
    print(f"\n{EXECUTIVE_TABLE} (newest first):")
    _print_executive_rows(args.rows)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
