"""A run killed half-way: no partial output, no held pool slot after start-up recovery, next run succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import psutil
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import WILL_RETRY_TAG

from orchestration.maintenance.warehouse_backup import restore_warehouse
from orchestration.maintenance.recovery import fail_interrupted_runs, set_pool_limits

REPO = Path(__file__).resolve().parents[1]


def _big_warehouse(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        # Large enough that the copy takes over a second (it is frozen the moment it begins: below), small enough
        # that making, backing up and restoring it stays cheap (12M rows took 58 CPU-s, most of the test).
        con.execute(
            "CREATE TABLE sales AS SELECT range AS id, random() AS a, random() AS b, md5(range::VARCHAR) AS c "
            "FROM range(2000000)"
        )


def _materialize_backup() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "warehouse_backup",
         "-m", "orchestration.definitions"],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _suspend_tree(process: subprocess.Popen) -> None:
    root = psutil.Process(process.pid)
    for member in [root, *root.children(recursive=True)]:
        try:
            member.suspend()
        except psutil.NoSuchProcess:
            pass


def _kill_tree(process: subprocess.Popen) -> None:
    root = psutil.Process(process.pid)
    family = [root, *root.children(recursive=True)]
    for member in family:
        member.kill()
    psutil.wait_procs(family, timeout=30)


def _claimed_duckdb_slots(instance: dg.DagsterInstance) -> int:
    return len(instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots)


@pytest.mark.timeout(300)
def test_killed_backup_run_leaves_no_backup_and_no_slot_and_the_next_run_succeeds(isolated_env, dagster_home):
    _big_warehouse(isolated_env / "warehouse" / "analytics.duckdb")
    backups = isolated_env / "warehouse" / "backup"
    with dg.DagsterInstance.get() as instance:
        set_pool_limits(instance)

    process = _materialize_backup()
    deadline = time.monotonic() + 120
    while not list(backups.glob(".*.partial")):
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the backup never started"
        time.sleep(0.01)
    # Freeze the run's processes the moment the copy has begun, so the kill lands half-way
    # whatever the machine's speed (no timing window), then kill them.
    _suspend_tree(process)
    assert list(backups.glob(".*.partial")) and not list(backups.glob("analytics_2*")), (
        "the copy finished before it could be frozen: make the warehouse bigger"
    )
    _kill_tree(process)

    assert not list(backups.glob("analytics_2*")), "a killed run must not leave a backup that looks complete"
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.STARTED
        assert _claimed_duckdb_slots(instance) == 1  # the dead run still holds the warehouse

        assert fail_interrupted_runs(instance) == [run.run_id]
        after = instance.get_run_by_id(run.run_id)
        assert after.status == DagsterRunStatus.FAILURE
        assert after.tags[WILL_RETRY_TAG] == "false"
        assert _claimed_duckdb_slots(instance) == 0
        assert fail_interrupted_runs(instance) == []  # idempotent

    again = _materialize_backup()
    output = again.communicate(timeout=240)[0].decode()
    assert again.returncode == 0, output[-3000:]
    (backup,) = backups.glob("analytics_2*")
    assert not list(backups.glob(".*")), "the leftover of the killed run is cleaned up"
    restored = restore_warehouse(backup, isolated_env / "restored.duckdb")
    with duckdb.connect(str(restored), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sales").fetchone()[0] == 2_000_000
    with dg.DagsterInstance.get() as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"]
        assert _claimed_duckdb_slots(instance) == 0
