"""Copy a desktop's Dagster history from its SQLite DAGSTER_HOME into the Postgres instance.

Copies finished runs (with their job and plan snapshots, creation, start and end times), every
event of each run (asset materializations, observations, check results, logs), events recorded
outside a run, schedule and sensor state with their tick history, backfills, and each copied run's
captured stdout/stderr (the compute logs the UI shows per step). Idempotent: what
is already in Postgres is left alone, so a second run copies nothing; a run whose copy was cut
short is copied again whole. Runs still in flight (queued, starting, started, canceling) are
skipped and reported; run the script again once they have finished.

    python scripts/migrate_history.py [--from-home dagster_home] [--to-home DIR] [--dry-run]

--to-home defaults to dagster_home_postgres/, prepared from deploy/dagster.yaml as serve.py does
(DAGSTER_POSTGRES_* from the environment or .env); any DAGSTER_HOME whose dagster.yaml points at
Postgres works, e.g. the Compose containers' /opt/dagster/dagster_home. Stop Dagster on the
desktop first. The last stdout line is one JSON object with the counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


from pipeline_common.script_support import ArgumentParser  # noqa: E402  (wrong arguments exit 78)
from scripts.postgres_instance import (  # noqa: E402
    DEFAULT_POSTGRES_HOME,
    DEFAULT_POSTGRES_PORT,
    EXIT_CONFIG,
    REPO_ROOT,
    ConfigError,
    postgres_environment,
    prepare_postgres_home,
    storage_kind,
)

EXIT_TRANSIENT = 75
DEFAULT_SOURCE_HOME = REPO_ROOT / "dagster_home"


@dataclass
class Count:
    """One kind of record: how many the source has, how many were (or would be) copied,
    how many the destination already had, how many were skipped (in-flight runs)."""

    source: int = 0
    copied: int = 0
    already_there: int = 0
    skipped: int = 0


@dataclass
class Report:
    runs: Count
    events: Count
    asset_materializations: Count
    asset_check_results: Count
    runless_events: Count
    instigator_states: Count
    ticks: Count
    backfills: Count
    compute_logs: Count  # captured stdout/stderr, one per step (or per run of in-process steps)

    @classmethod
    def empty(cls) -> Report:
        return cls(**{name: Count() for name in cls.__dataclass_fields__})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-home", type=Path, default=DEFAULT_SOURCE_HOME, help=f"the desktop's SQLite DAGSTER_HOME (default {DEFAULT_SOURCE_HOME})")
    parser.add_argument("--to-home", type=Path, default=None, help=f"DAGSTER_HOME of the Postgres instance (default {DEFAULT_POSTGRES_HOME})")
    parser.add_argument("--dry-run", action="store_true", help="count what would be copied; write nothing")
    return parser.parse_args(argv)


# --- opening the two instances -------------------------------------------------------------------


def open_instance(home: Path):
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


_HELD_LOCKS: list = []


def open_source(home: Path):
    if not (home / "dagster.yaml").is_file() and not any(home.glob("history/runs.db")):
        raise ConfigError(f"{home}: not a Dagster home (no dagster.yaml and no history/runs.db)")
    from orchestration.instance_lock import FileInstanceLock, InstanceLockHeld

    lock = FileInstanceLock(home)
    try:
        # Held until this process ends: no supervisor starts on the desktop's home mid-copy.
        lock.acquire()
    except InstanceLockHeld as exc:
        raise ConfigError(f"stop Dagster on the desktop (the supervisor) before migrating its history: {exc}") from None
    _HELD_LOCKS.append(lock)
    instance = open_instance(home)
    if storage_kind(instance) != "sqlite":
        raise ConfigError(f"{home}: the source must be a SQLite home, this one stores runs in {storage_kind(instance)}")
    return instance


def open_destination(home: Path | None):
    if home is None:
        home = DEFAULT_POSTGRES_HOME
        # A missing variable is named before anything is opened; the port gets its default.
        os.environ.update(postgres_environment())
        prepare_postgres_home(home)
    elif not (home / "dagster.yaml").is_file():
        raise ConfigError(f"{home / 'dagster.yaml'} not found: --to-home must be the Postgres instance's DAGSTER_HOME")
    elif not os.environ.get("DAGSTER_POSTGRES_PORT", "").strip():
        os.environ["DAGSTER_POSTGRES_PORT"] = DEFAULT_POSTGRES_PORT
    instance = open_instance(home)
    if storage_kind(instance) != "postgres":
        raise ConfigError(f"{home}: the destination must store its history in Postgres, this one uses {storage_kind(instance)}")
    return instance


# --- copying ------------------------------------------------------------------------------------


def _in_flight_statuses():
    from dagster._core.storage.dagster_run import DagsterRunStatus

    return {DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}


def _run_status_event(event) -> bool:
    from dagster._core.events import EVENT_TYPE_TO_PIPELINE_RUN_STATUS

    return event.is_dagster_event and event.dagster_event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS


def _count_kinds(events: Iterable, report: Report, field: str) -> None:
    from dagster._core.events import DagsterEventType

    for event in events:
        if not event.is_dagster_event:
            continue
        if event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            setattr(report.asset_materializations, field, getattr(report.asset_materializations, field) + 1)
        elif event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            setattr(report.asset_check_results, field, getattr(report.asset_check_results, field) + 1)


def _copy_snapshots(source, destination, run) -> None:
    storage_from, storage_to = source.run_storage, destination.run_storage
    if run.job_snapshot_id and not storage_to.has_job_snapshot(run.job_snapshot_id):
        if storage_from.has_job_snapshot(run.job_snapshot_id):
            storage_to.add_job_snapshot(storage_from.get_job_snapshot(run.job_snapshot_id))
    plan_id = run.execution_plan_snapshot_id
    if plan_id and not storage_to.has_execution_plan_snapshot(plan_id):
        if storage_from.has_execution_plan_snapshot(plan_id):
            storage_to.add_execution_plan_snapshot(storage_from.get_execution_plan_snapshot(plan_id))


def _copy_run(source, destination, record, events: list) -> None:
    run = record.dagster_run
    _copy_snapshots(source, destination, run)
    destination.run_storage.add_historical_run(run, record.create_timestamp)
    for event in events:
        destination.event_log_storage.store_event(event)
    # Replaying the run's status events sets its start and end times (and status) from when they
    # happened, so durations, the runs list and the housekeeping cut-off match the desktop's.
    for event in events:
        if _run_status_event(event):
            when = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc)
            destination.run_storage.handle_run_event(run.run_id, event.dagster_event, update_timestamp=when)


def _captured_log_keys(manager, run_id: str, events: list) -> list[list[str]]:
    """The compute-log keys a run recorded: its LOGS_CAPTURED events name them."""
    from dagster._core.events import DagsterEventType

    keys = []
    for event in events:
        if event.is_dagster_event and event.dagster_event_type == DagsterEventType.LOGS_CAPTURED:
            file_key = event.dagster_event.event_specific_data.file_key
            key = list(manager.build_log_key_for_run(run_id, file_key))
            if key not in keys:
                keys.append(key)
    return keys


def _local_log_files(manager, log_key: list[str]) -> list[Path]:
    from dagster._core.storage.compute_log_manager import ComputeIOType
    from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION

    return [Path(manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type]))
            for io_type in (ComputeIOType.STDOUT, ComputeIOType.STDERR)]


def _copy_file(source: Path, target: Path) -> None:
    """Whole or not at all: a copy cut short leaves the target as it was."""
    import shutil

    from pipeline_common.files import atomic_write

    with atomic_write(target) as partial:  # makes the target's folder
        shutil.copyfile(source, partial)


def migrate_compute_logs(source, destination, run_id: str, events: list, report: Report, dry_run: bool) -> None:
    """A finished run's captured stdout/stderr, file by file, when both instances keep them on local
    disk (the desktop's default, and the deployment's `storage` volume); a log whose files are already
    there, the same size, is left alone, so a migration cut short is completed by the next one."""
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    from_logs, to_logs = source.compute_log_manager, destination.compute_log_manager
    keys = _captured_log_keys(from_logs, run_id, events)
    report.compute_logs.source += len(keys)
    if not isinstance(from_logs, LocalComputeLogManager) or not isinstance(to_logs, LocalComputeLogManager):
        report.compute_logs.skipped += len(keys)
        if keys:
            print(f"compute logs of run {run_id} not copied: {type(from_logs).__name__} -> "
                  f"{type(to_logs).__name__} (only local-disk compute logs are copied)")
        return
    for key in keys:
        pairs = [(a, b) for a, b in zip(_local_log_files(from_logs, key), _local_log_files(to_logs, key)) if a.exists()]
        complete = from_logs.is_capture_complete(key)
        files_there = all(b.exists() and b.stat().st_size == a.stat().st_size for a, b in pairs)
        if files_there and (to_logs.is_capture_complete(key) or not complete):
            report.compute_logs.already_there += 1
            continue
        report.compute_logs.copied += 1
        if dry_run:
            continue
        for from_file, to_file in pairs:
            _copy_file(from_file, to_file)
        if complete:  # the UI stops waiting for more output
            Path(to_logs.complete_artifact_path(key)).touch()


def migrate_runs(source, destination, report: Report, dry_run: bool) -> None:
    in_flight = _in_flight_statuses()
    records = sorted(source.get_run_records(), key=lambda r: r.create_timestamp)
    for record in records:
        run = record.dagster_run
        report.runs.source += 1
        events = list(source.all_logs(run.run_id))
        report.events.source += len(events)
        _count_kinds(events, report, "source")
        if run.status in in_flight:
            report.runs.skipped += 1
            report.events.skipped += len(events)
            report.compute_logs.skipped += len(_captured_log_keys(source.compute_log_manager, run.run_id, events))
            print(f"skipped run {run.run_id} ({run.job_name}): still {run.status.value}; migrate again once it has finished")
            continue
        # The logs first: a run counts as there once its events are, and must not be left without them.
        migrate_compute_logs(source, destination, run.run_id, events, report, dry_run)
        if destination.has_run(run.run_id):
            if len(destination.all_logs(run.run_id)) == len(events):
                report.runs.already_there += 1
                report.events.already_there += len(events)
                _count_kinds(events, report, "already_there")
                continue
            # A copy cut short (killed, connection lost): replace it with a whole one.
            print(f"run {run.run_id}: incomplete earlier copy, copying it again")
            if not dry_run:
                destination.delete_run(run.run_id)
        report.runs.copied += 1
        report.events.copied += len(events)
        _count_kinds(events, report, "copied")
        if not dry_run:
            _copy_run(source, destination, record, events)


def _runless_fingerprint(event) -> tuple:
    dagster_event = event.dagster_event
    key = dagster_event.asset_key.to_string() if dagster_event and dagster_event.asset_key else None
    return (round(event.timestamp, 6), event.dagster_event_type, key, event.user_message)


def migrate_runless_events(source, destination, report: Report, dry_run: bool) -> None:
    """Events recorded outside any run (reported materializations and observations)."""
    from dagster._core.instance.utils import RUNLESS_RUN_ID

    events = list(source.all_logs(RUNLESS_RUN_ID))
    existing = {_runless_fingerprint(e) for e in destination.all_logs(RUNLESS_RUN_ID)}
    report.runless_events.source = len(events)
    for event in events:
        if _runless_fingerprint(event) in existing:
            report.runless_events.already_there += 1
            continue
        report.runless_events.copied += 1
        if not dry_run:
            destination.event_log_storage.store_event(event)


def _tick_fingerprint(tick) -> tuple:
    return (round(tick.timestamp, 6), tick.status.value)


def migrate_instigators(source, destination, report: Report, dry_run: bool) -> None:
    """Schedule and sensor state (running or stopped, cursors) and their tick history."""
    for state in source.all_instigator_state():
        report.instigator_states.source += 1
        if destination.get_instigator_state(state.instigator_origin_id, state.selector_id) is None:
            report.instigator_states.copied += 1
            if not dry_run:
                destination.add_instigator_state(state)
        else:
            report.instigator_states.already_there += 1
        ticks = source.get_ticks(state.instigator_origin_id, state.selector_id)
        existing = {
            _tick_fingerprint(t) for t in destination.get_ticks(state.instigator_origin_id, state.selector_id)
        }
        for tick in sorted(ticks, key=lambda t: t.timestamp):
            report.ticks.source += 1
            if _tick_fingerprint(tick) in existing:
                report.ticks.already_there += 1
                continue
            report.ticks.copied += 1
            if not dry_run:
                destination.create_tick(tick.tick_data)


def migrate_backfills(source, destination, report: Report, dry_run: bool) -> None:
    for backfill in source.get_backfills():
        report.backfills.source += 1
        if destination.get_backfill(backfill.backfill_id) is not None:
            report.backfills.already_there += 1
            continue
        report.backfills.copied += 1
        if not dry_run:
            destination.add_backfill(backfill)


def migrate(source, destination, dry_run: bool = False) -> Report:
    report = Report.empty()
    migrate_instigators(source, destination, report, dry_run)
    migrate_backfills(source, destination, report, dry_run)
    migrate_runs(source, destination, report, dry_run)
    migrate_runless_events(source, destination, report, dry_run)
    return report


def print_report(report: Report, dry_run: bool) -> None:
    verb = "would copy" if dry_run else "copied"
    print(f"{'kind':<24}{'source':>9}{verb:>12}{'already':>9}{'skipped':>9}")
    for name, count in asdict(report).items():
        print(f"{name:<24}{count['source']:>9}{count['copied']:>12}{count['already_there']:>9}{count['skipped']:>9}")


def _is_connection_error(exc: Exception) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OperationalError", "InterfaceError"})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary: dict = {"dry_run": args.dry_run}
    try:
        source_home = args.from_home.resolve()
        if args.to_home is not None and args.to_home.resolve() == source_home:
            raise ConfigError("--from-home and --to-home are the same directory")
        try:
            with open_source(source_home) as source, open_destination(args.to_home) as destination:
                report = migrate(source, destination, dry_run=args.dry_run)
        finally:
            while _HELD_LOCKS:
                _HELD_LOCKS.pop().release()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        summary["error"] = {"code": EXIT_CONFIG, "message": str(exc)}
        print(json.dumps(summary))
        return EXIT_CONFIG
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        message = f"cannot reach Postgres ({type(exc).__name__}); run it again (a run copied only in part is copied again whole)"
        print(message, file=sys.stderr)
        summary["error"] = {"code": EXIT_TRANSIENT, "message": message}
        print(json.dumps(summary))
        return EXIT_TRANSIENT
    print_report(report, args.dry_run)
    summary.update(asdict(report))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    raise SystemExit(run_main(main))
