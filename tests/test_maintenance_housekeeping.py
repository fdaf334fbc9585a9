"""Weekly housekeeping on a real SQLite Dagster instance: old runs and their logs go, new ones stay."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.maintenance.housekeeping import build_housekeeping, delete_old_runs, instance_sqlite_files
from pipeline_common.config import load_pipeline_config

REPO = Path(__file__).resolve().parents[1]


@dg.op
def chatty(context) -> None:
    print("x" * 10_000)  # captured stdout: a compute log file to delete
    context.log.info("y" * 10_000)


@dg.job
def chatty_job() -> None:
    chatty()


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def _compute_log_dirs(instance: dg.DagsterInstance, run_id: str) -> list[Path]:
    return [p for p in Path(instance.root_directory).rglob(run_id) if p.is_dir()]


def _wait_for_sqlite_clock(moment: dt.datetime, timeout: float = 10) -> None:
    """Return once SQLite's CURRENT_TIMESTAMP (the runs' creation stamp) has reached `moment` (UTC)."""
    deadline = time.monotonic() + timeout
    with sqlite3.connect(":memory:") as con:
        while True:
            (now,) = con.execute("select strftime('%Y-%m-%d %H:%M:%S', 'now')").fetchone()
            if dt.datetime.fromisoformat(now).replace(tzinfo=dt.timezone.utc) >= moment:
                return
            assert time.monotonic() < deadline, f"SQLite's clock never reached {moment}"
            time.sleep(0.02)


def test_old_finished_runs_and_their_compute_logs_are_deleted_new_ones_kept(instance):
    old = [chatty_job.execute_in_process(instance=instance).run_id for _ in range(3)]
    # SQLite stamps runs to the second: the cutoff is the second after the last old run, and the
    # new run starts once SQLite's clock has reached it (waiting on that, not for a fixed time).
    last_old = max(r.create_timestamp for r in instance.get_run_records())
    cutoff = last_old.replace(microsecond=0) + dt.timedelta(seconds=1)
    _wait_for_sqlite_clock(cutoff)
    new = chatty_job.execute_in_process(instance=instance).run_id
    [new_record] = instance.get_run_records(dg.RunsFilter(run_ids=[new]))
    assert new_record.create_timestamp >= cutoff > last_old
    assert all(_compute_log_dirs(instance, run_id) for run_id in old + [new])

    deleted = delete_old_runs(instance, cutoff)

    assert sorted(deleted) == sorted(old)
    assert [r.run_id for r in instance.get_runs()] == [new]
    assert all(instance.all_logs(run_id) == [] for run_id in old)
    assert not any(_compute_log_dirs(instance, run_id) for run_id in old)
    assert _compute_log_dirs(instance, new) and instance.all_logs(new)


def test_housekeeping_job_vacuums_the_instance_databases_and_keeps_it_usable(instance):
    for _ in range(5):
        chatty_job.execute_in_process(instance=instance)
    delete_old_runs(instance, dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
    files = instance_sqlite_files(Path(instance.root_directory))
    assert {f.name for f in files} >= {"runs.db", "index.db", "schedules.db"}
    before = sum(f.stat().st_size for f in files)

    job, schedule = build_housekeeping(load_pipeline_config())
    result = job.execute_in_process(instance=instance)

    assert result.success
    (materialized,) = [
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"
    ]
    freed = materialized.event_specific_data.metadata["bytes_freed"].value
    after = sum(f.stat().st_size for f in files)
    assert freed == before - after and freed > 0
    assert [r.run_id for r in instance.get_runs()] == [result.run_id]  # still readable and writable
    assert schedule.cron_schedule == "0 6 * * 0" and schedule.execution_timezone == "Europe/London"
