"""Sync one market's dataset from the Azure container (or the local landing folder) to typed Parquet files.

Contract section 3: only new or changed files in the window are converted, each file is checked against
the contract's columns and types, and each Parquet file appears whole or not at all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa

from azure_sync.csv_reader import BadFileError, read_strict_csv
from azure_sync.outputs import (
    ParquetLayout,
    load_state,
    outcome_path,
    parquet_path,
    save_outcome,
    save_state,
    state_path,
    write_parquet,
)
from azure_sync.value_rules import check_values
from pipeline_common.blob_paths import dataset_prefix, dated_blob_pattern, reference_blob_name
from pipeline_common import settings
from pipeline_common.source_container import (
    DOWNLOAD_PREFIX,
    AzureSource,
    Blob,
    LandingSource,
    layout_problem,
    local_date,
    open_source,
)
from pipeline_common.leftovers import remove_stale
from pipeline_common.config import ConfigError, DatasetType, PipelineConfig, load_for_script, today_in
from pipeline_common.resource_limits import apply_arrow_threads
from pipeline_common.script_support import (
    EXIT_CONFIG,
    BadDataError,
    ConfigurationError,
    PipelineIOError,
    ScriptRun,
    TransientError,
    iso_date,
    io_error,
    print_summary,
    script_run,
)

SCRIPT_NAME = "sync_azure"
AZURE_WORKERS = 8  # downloads are I/O bound: overlap them
LOCAL_WORKERS = int(os.environ.get("SYNC_LOCAL_WORKERS") or max(1, os.cpu_count() or 1))  # CPU bound: one file per core
MAX_DAYS_BACK = 3660  # ten years, as pipeline.yaml allows
SOURCE_BLOB_COLUMN = "_source_blob"
FILE_DATE_COLUMN = "_file_date"

EXAMPLES = """\
examples:
  # the configured window (pipeline.yaml days_back) ending today (pipeline.yaml timezone)
  python bat_file_data_refresh/python/azure_sync/sync_azure.py --market UK --dataset ingest_orders
  # a 7-day window ending on a given day, re-converting every file in it
  python bat_file_data_refresh/python/azure_sync/sync_azure.py --market DE --dataset ingest_orders --days-back 7 --as-of 2026-11-20 --force
  # a reference dataset (one file)
  python bat_file_data_refresh/python/azure_sync/sync_azure.py --market UK --dataset ingest_products_sku

source: Azure Blob when AZURE_STORAGE_CONNECTION_STRING is set, or AZURE_STORAGE_ACCOUNT_URL with
AZURE_STORAGE_SAS_TOKEN or a Microsoft Entra ID identity (container AZURE_CONTAINER, default 'raw'),
otherwise LANDING_DIR (docs/sources.md). Output: $DATA_DIR/raw/{MARKET}/{dataset}/. Exit codes: 0 ok,
65 a file was rejected (the others still synced), 74 disk full or no permission on $DATA_DIR,
75 network/throttling (retry later), 78 configuration or arguments. docs/rejected_inputs.md lists
every rejection and what to do.
"""


OUTCOME_WORDS = {
    BadDataError.exit_code: "rejected (bad data, fix the file)",
    TransientError.exit_code: "not synced (transient, a retry may succeed)",
    PipelineIOError.exit_code: "not synced (I/O error on the pipeline's own files)",
}


@dataclass(frozen=True)
class SyncJob:
    market: str
    dataset: str
    columns: dict[str, str]
    kind: DatasetType
    currency: str
    cadence: str
    timezone: str
    days_back: int
    as_of: dt.date
    force: bool

    @property
    def first_day(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.days_back - 1)


@dataclass(frozen=True)
class Target:
    """A blob in scope and the Parquet file it becomes."""

    blob: Blob
    file_date: dt.date
    output: Path


@dataclass
class Outcome:
    target: Target
    rows: int = 0
    error: str | None = None
    exit_code: int = 0


from pipeline_common.script_support import ArgumentParser as _ArgumentParser  # noqa: E402 - 78 and the JSON line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(
        prog="sync_azure.py",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--market", required=True, help="market code from pipeline.yaml, e.g. UK")
    parser.add_argument("--dataset", required=True, help="dataset from pipeline.yaml, e.g. ingest_orders")
    parser.add_argument("--days-back", type=int, help="window length in days, ending at --as-of (default: pipeline.yaml)")
    parser.add_argument("--as-of", type=iso_date, help="last day of the window, YYYY-MM-DD (default: today in pipeline.yaml's timezone)")
    parser.add_argument("--force", action="store_true", help="re-sync every file in scope, changed or not")
    args = parser.parse_args(argv)
    if args.days_back is not None and not 1 <= args.days_back <= MAX_DAYS_BACK:
        parser.error(f"--days-back must be between 1 and {MAX_DAYS_BACK}, got {args.days_back}")
    if args.as_of is not None and args.as_of < dt.date(1900, 1, 1) + dt.timedelta(days=MAX_DAYS_BACK):
        parser.error(f"--as-of {args.as_of} is too early; expected a date after 1910")
    return args


def build_job(
    config: PipelineConfig, market: str, dataset: str, days_back: int | None = None,
    as_of: dt.date | None = None, force: bool = False,
) -> SyncJob:
    """One dataset's sync from pipeline.yaml, with the command line's overrides (None: the config's)."""
    try:
        entry = config.dataset(market, dataset)
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    kind = config.dataset_type(dataset)
    return SyncJob(
        market=market,
        dataset=dataset,
        columns=kind.column_types,
        kind=kind,
        currency=config.markets[market].currency,
        cadence=kind.cadence,
        timezone=config.timezone,
        days_back=days_back or entry.days_back,
        as_of=as_of or today_in(config.timezone),
        force=force or entry.force,
    )


def targets_in_scope(
    source: AzureSource | LandingSource, job: SyncJob, raw_dir: Path
) -> tuple[list[Target], list[str]]:
    """The blobs to consider, and the blobs ignored because they break the path layout (with why)."""
    if job.cadence == "reference":
        name = reference_blob_name(job.market, job.dataset)
        targets = [
            Target(blob, local_date(blob.last_modified, job.timezone), parquet_path(raw_dir, job.market, job.dataset, None))
            for blob in source.list([name])
            if blob.name == name
        ]
        return targets, []
    prefix = dataset_prefix(job.market, job.dataset)
    # Listing only the years the window touches keeps the listing short however long the history is.
    prefixes = [f"{prefix}{year:04d}/" for year in range(job.first_day.year, job.as_of.year + 1)]
    pattern = dated_blob_pattern(job.market, job.dataset)
    targets, ignored = [], []
    for blob in source.list(prefixes):
        problem = layout_problem(blob.name, pattern)
        if problem is not None:  # never synced, so it can never overwrite a correctly placed day
            ignored.append(f"{blob.name} ({problem})")
            continue
        file_date = dt.datetime.strptime(blob.name[-12:-4], "%Y%m%d").date()
        if job.first_day <= file_date <= job.as_of:
            targets.append(Target(blob, file_date, parquet_path(raw_dir, job.market, job.dataset, file_date)))
    return sorted(targets, key=lambda target: target.blob.name), sorted(ignored)


def needs_sync(target: Target, state: dict[str, dict[str, Any]], force: bool) -> bool:
    recorded = state.get(target.blob.name, {})
    return force or recorded.get("etag") != target.blob.etag or not target.output.is_file()


def sync_one(
    source: AzureSource | LandingSource, target: Target, job: SyncJob, run: ScriptRun, threaded_parse: bool
) -> Outcome:
    """Download (if remote), parse strictly, write atomically; a bad or unreachable file becomes an Outcome."""
    try:
        with source.open_local(target.blob) as path:
            file_date = target.file_date if job.cadence != "reference" else None
            try:
                parsed = read_strict_csv(path, target.blob.name, job.columns, use_threads=threaded_parse)
            except OSError as exc:
                raise io_error(path, exc, "reading") from None
            except BadFileError as exc:
                if exc.before is not None:  # a value rule broken above the faulty line is the first fault
                    check_values(exc.before, target.blob.name, job.kind, job.currency, file_date)
                raise
        check_values(parsed, target.blob.name, job.kind, job.currency, file_date)
        if parsed.dropped_columns:
            run.log.warning(
                f"{target.blob.name}: unknown column(s) {', '.join(map(repr, parsed.dropped_columns))} dropped"
            )
        table = with_lineage(parsed.table, target)
        try:
            write_parquet(table, target.output, parquet_layout(job))
        except OSError as exc:
            raise io_error(target.output, exc) from None
    except BadFileError as exc:
        return Outcome(target, error=str(exc), exit_code=BadDataError.exit_code)
    except (TransientError, PipelineIOError) as exc:  # network trouble, a locked target, a full disk
        return Outcome(target, error=str(exc), exit_code=exc.exit_code)
    return Outcome(target, rows=table.num_rows)


def parquet_layout(job: SyncJob) -> ParquetLayout:
    """The dataset's Parquet encodings, from its contract column types."""
    kinds = {**job.columns, SOURCE_BLOB_COLUMN: "string", FILE_DATE_COLUMN: "date"}
    return ParquetLayout(
        dictionary=[name for name, kind in kinds.items() if kind in ("string", "date")],
        delta=[name for name, kind in kinds.items() if kind == "integer"],
        statistics=[name for name, kind in kinds.items() if kind != "string"],
    )


def with_lineage(table: pa.Table, target: Target) -> pa.Table:
    rows = table.num_rows
    table = table.append_column(SOURCE_BLOB_COLUMN, pa.repeat(pa.scalar(target.blob.name, pa.string()), rows))
    return table.append_column(FILE_DATE_COLUMN, pa.repeat(pa.scalar(target.file_date, pa.date32()), rows))


def remove_leftovers(job: SyncJob, raw_dir: Path, log: Any) -> None:
    """Delete the temporary files a killed sync of this dataset left (only when their process is gone)."""
    dataset_dir = raw_dir / job.market / job.dataset
    folders = [dataset_dir, raw_dir / "_state" / job.market]
    if job.cadence != "reference":
        folders += [dataset_dir / f"{year:04d}" for year in range(job.first_day.year, job.as_of.year + 1)]
    removed = [path for folder in folders for path in remove_stale(folder, [f".{job.dataset}"])]
    removed += remove_stale(Path(tempfile.gettempdir()), [f".{DOWNLOAD_PREFIX}"])
    if removed:
        log.info(f"removed {len(removed)} temporary file(s) left by an interrupted run: "
                 + ", ".join(path.name for path in removed))


def run_sync(
    job: SyncJob, run: ScriptRun, started: float
) -> tuple[dict[str, Any], list[Target], list[Outcome]]:
    raw_dir = settings.raw_dir()
    remove_leftovers(job, raw_dir, run.log)
    source = open_source()
    try:
        run.log.info(f"{job.market}/{job.dataset}: reading {source.describe()}" + _window_text(job))
        targets, ignored = targets_in_scope(source, job, raw_dir)
        if ignored:
            run.log.warning(
                f"{job.market}/{job.dataset}: {len(ignored)} file(s) ignored, not where the layout puts them "
                "(never synced; move or rename them):\n  " + "\n  ".join(ignored)
            )
        state_file = state_path(raw_dir, job.market, job.dataset)
        state, warning = load_state(state_file)
        if warning:
            run.log.warning(warning)
        todo = [target for target in targets if needs_sync(target, state, job.force)]
        outcomes = _sync_all(source, todo, job, run)
    finally:
        source.close()
    for outcome in outcomes:
        if outcome.error is None:
            state[outcome.target.blob.name] = {
                "etag": outcome.target.blob.etag,
                "output": outcome.target.output.relative_to(raw_dir).as_posix(),
                "rows": outcome.rows,
                "file_date": outcome.target.file_date.isoformat(),
            }
    if any(outcome.error is None for outcome in outcomes):
        save_state(state_file, job.market, job.dataset, state)
    summary = summarise(job, targets, outcomes, len(ignored))
    run.log.info(
        f"{job.market}/{job.dataset}: {summary['files_synced']} synced, {summary['files_skipped']} skipped, "
        f"{summary['files_failed']} failed, {summary['rows_loaded']} rows in {time.perf_counter() - started:.3f} s"
    )
    return summary, targets, outcomes


def _window_text(job: SyncJob) -> str:
    if job.cadence == "reference":
        return ""
    return f", file dates {job.first_day} .. {job.as_of}" + (" (forced)" if job.force else "")


def _sync_all(
    source: AzureSource | LandingSource, todo: list[Target], job: SyncJob, run: ScriptRun
) -> list[Outcome]:
    if not todo:
        return []
    workers = min(AZURE_WORKERS if isinstance(source, AzureSource) else LOCAL_WORKERS, len(todo))
    # Many files: one file per thread, each parsed single-threaded (no oversubscription, writes overlap
    # reads). Fewer files than cores: let Arrow split each file across its own CPU pool instead.
    threaded_parse = len(todo) < LOCAL_WORKERS
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync") as pool:
        futures = [pool.submit(sync_one, source, target, job, run, threaded_parse) for target in todo]
        return [future.result() for future in futures]


def summarise(job: SyncJob, targets: list[Target], outcomes: list[Outcome], ignored: int) -> dict[str, Any]:
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    summary = {
        "market": job.market,
        "dataset": job.dataset,
        "files_listed": len(targets),
        "files_synced": len(outcomes) - len(failed),
        "files_skipped": len(targets) - len(outcomes),
        "files_failed": len(failed),
        "rows_loaded": sum(outcome.rows for outcome in outcomes),
    }
    if ignored:  # only when there are some: a clean run's line stays exactly the contract's example
        summary["files_ignored"] = ignored
    return summary


def newest_file_date(targets: list[Target]) -> str | None:
    """Newest file date in scope that has a Parquet file now (synced or kept from an earlier run)."""
    dates = [target.file_date for target in targets if target.output.is_file()]
    return max(dates).isoformat() if dates else None


def report(
    run: ScriptRun, job: SyncJob, summary: dict[str, Any], targets: list[Target], raw_dir: Path,
    asset_key: str | None = None,
) -> None:
    metadata: dict[str, Any] = {
        key: summary[key]
        for key in ("files_listed", "files_synced", "files_skipped", "files_failed", "rows_loaded")
    }
    metadata["files_ignored"] = summary.get("files_ignored", 0)
    newest = newest_file_date(targets)
    if newest is not None:
        metadata["newest_file_date"] = newest
    metadata["output_dir"] = str(raw_dir / job.market / job.dataset)
    run.report_materialization(metadata, asset_key=asset_key)


def fail_if_needed(job: SyncJob, outcomes: list[Outcome], summary: dict[str, Any]) -> None:
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if job.cadence == "reference" and summary["files_listed"] == 0:
        raise BadDataError(f"{reference_blob_name(job.market, job.dataset)} was not found in the source")
    if not failed:
        return
    codes = {outcome.exit_code for outcome in failed}
    # A full disk needs a person now (74); a retry can fix the transient ones and will then stop at the
    # bad ones with 65, so 75 wins over 65.
    error_class = next((cls for cls in (PipelineIOError, TransientError) if cls.exit_code in codes), BadDataError)
    lines = [outcome.error or "" for outcome in failed]
    raise error_class(f"{len(failed)} of {summary['files_listed']} file(s) not synced:\n  " + "\n  ".join(lines))


def _record_outcome(path: Path, outcomes: list[Outcome], error: str | None) -> None:
    problems = {
        outcome.target.blob.name: {
            "file_date": outcome.target.file_date.isoformat(),
            "etag": outcome.target.blob.etag,
            "problem": "rejected" if outcome.exit_code == BadDataError.exit_code else "failed",
            "message": (outcome.error or "")[:500],
        }
        for outcome in outcomes
        if outcome.error is not None
    }
    try:
        save_outcome(path, problems, error)
    except OSError as exc:  # a status file must never hide the sync's own result
        print(f"warning: could not record the sync outcome in {path}: {exc}", file=sys.stderr)


def sync_dataset(
    job: SyncJob, run: ScriptRun, started: float
) -> tuple[dict[str, Any], list[Target], list[Outcome]]:
    """Sync one dataset, record its outcome for the freshness check and log it. The caller decides
    the exit (fail_if_needed) and then reports the materialization (report)."""
    record = outcome_path(settings.raw_dir(), job.market, job.dataset)
    try:
        summary, targets, outcomes = run_sync(job, run, started)
    except Exception as exc:  # the freshness check says "sync failed" with this message
        _record_outcome(record, [], f"{type(exc).__name__}: {str(exc).strip()[:500]}")
        raise
    _record_outcome(record, outcomes, None)
    for outcome in outcomes:
        if outcome.error is not None:
            run.log.error(f"{OUTCOME_WORDS[outcome.exit_code]}: {outcome.error}")
    if summary["files_listed"] == 0 and job.cadence != "reference":
        run.log.warning(f"{job.market}/{job.dataset}: no files in the window" + _window_text(job))
    return summary, targets, outcomes


def main(argv: list[str] | None = None) -> None:
    started = time.perf_counter()  # the "internal time" the benchmark reports starts here
    args = parse_args(argv)
    with script_run(SCRIPT_NAME) as run:
        config = load_for_script()
        apply_arrow_threads(config)  # the resource limits: pyarrow's thread pools (pipeline.yaml resource_limits.sync)
        run.summary = {"market": args.market, "dataset": args.dataset}
        job = build_job(config, args.market, args.dataset, args.days_back, args.as_of, args.force)
        summary, targets, outcomes = sync_dataset(job, run, started)
        run.summary = summary
        fail_if_needed(job, outcomes, summary)
        report(run, job, summary, targets, settings.raw_dir())
        print_summary(summary)


if __name__ == "__main__":
    main()
