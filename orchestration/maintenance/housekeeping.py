"""Weekly clean-up of the Dagster instance: old runs, their compute logs, then VACUUM of SQLite.

Only finished runs older than `jobs.housekeeping.keep_days` go (their events, run record and
captured stdout/stderr). VACUUM uses sqlite3 on the instance's database files: Dagster's
storages expose no VACUUM, and their SQLAlchemy connections open a transaction VACUUM refuses.
On a Postgres instance (deploy/) the deletions are the same and there is no compaction step:
Postgres's autovacuum reuses the freed space (docs/deployment.md).
"""

import datetime as dt
import re
import sqlite3
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._time import get_current_datetime

from pipeline_common.config import PipelineConfig

HOUSEKEEPING_JOB = "dagster_housekeeping_job"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
_RUN_DB = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.db$")
_SQLITE_BUSY_TIMEOUT_S = 60


def delete_old_runs(instance: dg.DagsterInstance, cutoff: dt.datetime) -> list[str]:
    """Delete finished runs created before `cutoff`, with their events and compute logs."""
    records = instance.get_run_records(RunsFilter(statuses=FINISHED, created_before=cutoff))
    deleted = []
    for record in records:
        run_id = record.dagster_run.run_id
        _delete_compute_logs(instance, run_id)
        instance.delete_run(run_id)
        deleted.append(run_id)
    return deleted


def _delete_compute_logs(instance: dg.DagsterInstance, run_id: str) -> None:
    try:
        instance.compute_log_manager.delete_logs(prefix=[run_id])
    except NotImplementedError:  # managers without deletion keep their own retention
        pass


def instance_sqlite_files(root: Path) -> list[Path]:
    """The instance's shared SQLite databases (runs, event index, schedules), not per-run files."""
    return sorted(p for p in root.rglob("*.db") if not _RUN_DB.match(p.name))


def vacuum(path: Path) -> int:
    """VACUUM one SQLite file; returns the bytes it freed."""
    before = path.stat().st_size
    con = sqlite3.connect(str(path), timeout=_SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        con.execute("VACUUM")
    finally:
        con.close()
    return before - path.stat().st_size


def stores_in_sqlite(instance: dg.DagsterInstance) -> bool:
    """True for the desktop's SQLite instance; False for Postgres (or any other server storage)."""
    return "Sqlite" in type(instance.run_storage).__name__


def build_housekeeping(config: PipelineConfig) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    settings = config.jobs.housekeeping

    @dg.op(name="prune_dagster_history")
    def prune_dagster_history(context: dg.OpExecutionContext) -> dg.Output:
        cutoff = get_current_datetime() - dt.timedelta(days=settings.keep_days)
        deleted = delete_old_runs(context.instance, cutoff)
        context.log.info(f"deleted {len(deleted)} finished runs created before {cutoff:%Y-%m-%d %H:%M %Z}")
        if not stores_in_sqlite(context.instance):
            context.log.info("instance storage is not SQLite: no VACUUM (Postgres's autovacuum reuses the space)")
            return dg.Output(None, metadata={"runs_deleted": len(deleted), "compaction": "none (autovacuum)"})
        freed = 0
        for path in instance_sqlite_files(Path(context.instance.root_directory)):
            try:
                freed += vacuum(path)
            except sqlite3.OperationalError as exc:  # busy: the daemon wins, next week tries again
                context.log.warning(f"VACUUM of {path.name} skipped: {exc}")
        return dg.Output(None, metadata={"runs_deleted": len(deleted), "bytes_freed": freed, "compaction": "sqlite VACUUM"})

    @dg.job(name=HOUSEKEEPING_JOB, description="Delete old run history and compute logs; compact SQLite.")
    def housekeeping_job() -> None:
        prune_dagster_history()

    schedule = dg.ScheduleDefinition(
        name="dagster_housekeeping_schedule",
        job=housekeeping_job,
        cron_schedule=settings.cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Weekly Dagster housekeeping, keeps {settings.keep_days} days of runs.",
    )
    return housekeeping_job, schedule
