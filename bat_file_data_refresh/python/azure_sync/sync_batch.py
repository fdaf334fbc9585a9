"""Sync several datasets in one process: what Dagster's `azure_sync` step runs, one Python start for all.

Each dataset goes through exactly the code of `sync_azure.py` (same window, same checks, same outputs,
same state); up to --workers datasets run at once, each with its own file pool as `sync_azure.py` has.
Under Dagster Pipes every dataset is reported as its own asset (`{market}_orders_azure`, ...), as soon
as it is done, so a failing dataset does not hide the others' materializations.

One JSON line per dataset (the line `sync_azure.py` would print, with an `error` field if it failed),
then, last, one JSON object for the batch. Exit code: 0 when every dataset synced, else the one that
needs the most attention of the failed datasets' codes: 74 (disk, permissions), 78 (configuration),
75 (transient: a retry syncs what is left), 65 (bad data); a crash (a bug) in any dataset ends in 1
after the others finished.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure_sync.sync_azure import MAX_DAYS_BACK, build_job, fail_if_needed, report, sync_dataset
from pipeline_common import settings
from pipeline_common.config import PipelineConfig, load_for_script
from pipeline_common.script_support import (
    ArgumentParser,
    BadDataError,
    ConfigurationError,
    PipelineIOError,
    ScriptRun,
    TransientError,
    classify_failure,
    iso_date,
    print_summary,
    script_run,
)
from pipeline_common.secrets import scrub

SCRIPT_NAME = "sync_batch"
DEFAULT_WORKERS = int(os.environ.get("SYNC_DATASET_WORKERS") or 4)
"""Datasets synced at once. Most of a daily run's datasets find nothing new (a listing and a state
file); the few with new files parse them on Arrow's own CPU pool, so a small number is enough."""

# Which failure a batch exits with when datasets fail differently: the one a person must see first.
BY_URGENCY = (PipelineIOError, ConfigurationError, TransientError, BadDataError)

EXAMPLES = """\
examples:
  # every dataset of pipeline.yaml, each with its configured window ending today
  python bat_file_data_refresh/python/azure_sync/sync_batch.py
  # the four orders datasets as of a given day
  python bat_file_data_refresh/python/azure_sync/sync_batch.py --datasets UK:ingest_orders DE:ingest_orders IT:ingest_orders JP:ingest_orders --as-of 2026-11-20
"""


@dataclass
class DatasetResult:
    market: str
    dataset: str
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    error: str | None = None
    crash: BaseException | None = None


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(
        prog="sync_batch.py", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--datasets", nargs="+", metavar="MARKET:DATASET",
                        help="datasets to sync, e.g. UK:ingest_orders (default: every dataset in pipeline.yaml)")
    parser.add_argument("--days-back", type=int, help="window length in days for every daily dataset (default: each one's pipeline.yaml value)")
    parser.add_argument("--as-of", type=iso_date, help="last day of the window, YYYY-MM-DD (default: today in pipeline.yaml's timezone)")
    parser.add_argument("--force", action="store_true", help="re-sync every file in scope, changed or not")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"datasets synced at once (default {DEFAULT_WORKERS})")
    args = parser.parse_args(argv)
    if args.days_back is not None and not 1 <= args.days_back <= MAX_DAYS_BACK:
        parser.error(f"--days-back must be between 1 and {MAX_DAYS_BACK}, got {args.days_back}")
    if args.as_of is not None and args.as_of < dt.date(1900, 1, 1) + dt.timedelta(days=MAX_DAYS_BACK):
        parser.error(f"--as-of {args.as_of} is too early; expected a date after 1910")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    for item in args.datasets or []:
        if item.count(":") != 1 or not all(item.split(":")):
            parser.error(f"--datasets {item!r}: expected MARKET:DATASET, e.g. UK:ingest_orders")
    return args


def selected(config: PipelineConfig, items: list[str] | None) -> list[tuple[str, str]]:
    if not items:
        return [(entry.market, entry.dataset) for entry in config.datasets]
    pairs = [tuple(item.split(":")) for item in items]
    return list(dict.fromkeys(pairs))  # a dataset named twice is synced once


def sync_one_dataset(config: PipelineConfig, market: str, dataset: str, args, run: ScriptRun) -> DatasetResult:
    """One dataset, start to end; its failure becomes its result, never the others' problem."""
    result = DatasetResult(market, dataset, summary={"market": market, "dataset": dataset})
    try:
        job = build_job(config, market, dataset, args.days_back, args.as_of, args.force)
        summary, targets, outcomes = sync_dataset(job, run, time.perf_counter())
        result.summary = summary
        fail_if_needed(job, outcomes, summary)
        # Reported as soon as it is done, and only when it synced: a failed dataset is not materialized.
        report(run, job, summary, targets, settings.raw_dir(), asset_key=config.asset_name(market, dataset))
    except Exception as exc:  # mapped as script_run maps it for one dataset; a bug ends the batch after the others
        failure = classify_failure(exc)
        if failure is None:
            result.crash = exc
        else:
            result.exit_code, result.error = failure[0], scrub(failure[1])
    return result


def batch_summary(results: list[DatasetResult]) -> dict[str, Any]:
    failed = [f"{r.market}/{r.dataset}" for r in results if r.exit_code or r.crash]
    totals = {key: sum(r.summary.get(key, 0) for r in results)
              for key in ("files_listed", "files_synced", "files_skipped", "files_failed", "rows_loaded")}
    return {"datasets": len(results), "datasets_failed": len(failed), **totals,
            **({"failed": failed} if failed else {})}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with script_run(SCRIPT_NAME) as run:
        config = load_for_script()
        pairs = selected(config, args.datasets)
        run.summary = {"datasets": len(pairs)}
        for market, dataset in pairs:  # an unknown dataset stops the batch before any work (78)
            build_job(config, market, dataset, args.days_back, args.as_of, args.force)
        workers = min(args.workers, len(pairs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataset") as pool:
            futures = [pool.submit(sync_one_dataset, config, market, dataset, args, run) for market, dataset in pairs]
            results = [future.result() for future in futures]
        for result in results:
            line = dict(result.summary)
            if result.error is not None:
                line["error"] = {"code": result.exit_code, "message": result.error}
            print_summary(line)
        run.summary = batch_summary(results)
        crashes = [result.crash for result in results if result.crash is not None]
        if crashes:
            raise crashes[0]
        failed = [result for result in results if result.exit_code]
        if failed:
            codes = {r.exit_code for r in failed}
            error_class = next(cls for cls in BY_URGENCY if cls.exit_code in codes)
            raise error_class(f"{len(failed)} of {len(results)} dataset(s) not synced:\n  " + "\n  ".join(
                f"{r.market}/{r.dataset} (exit {r.exit_code}): {r.error}" for r in failed))
        print_summary(run.summary)


if __name__ == "__main__":
    main()
