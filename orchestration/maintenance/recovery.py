"""Start-up repair of the Dagster instance, run by scripts/supervisor.py and scripts/serve.py
before the daemon starts (they hold the instance's lock: orchestration.instance_lock).

Runs a restart left STARTING/STARTED/CANCELING on this host have no process behind them any
more: each step left running gets a step failure, the run is marked failed (CANCELING ones:
canceled) with the reason, and its pool slots are freed. Such runs are **not retried
automatically**: the message says so and `dagster/will_retry` is `false` when the daemon reads
it (a retry could start hours late, after the schedules that supersede the run: the late-tick
rule). Runs of other hosts and container runs are left alone (orchestration.maintenance.interruption).
The duckdb pool's limit is set to 1. Run as `python -m orchestration.maintenance.recovery`; by
hand it refuses while a daemon holds the instance (exit 78).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from orchestration.hosts import host_identity
from orchestration.maintenance.interruption import end_interrupted_run, ownership, shared_storage
from orchestration.resources import DUCKDB_POOL

IN_FLIGHT = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def interrupted_reason(host: str) -> str:
    return (
        "Dagster was not running when this run should have finished (the desktop restarted, or the "
        f"server was stopped or crashed), so the start-up on {host} marked it failed. It is not "
        "retried automatically: a retry could start hours late, after the schedules that supersede "
        "it. If its data is still needed, re-run it from the UI (Re-execute > From failure)."
    )


def fail_interrupted_runs(instance: dg.DagsterInstance, host: str | None = None, log=print) -> list[str]:
    """Fail (or cancel) every in-flight run of this host, end its steps, free its pool slots."""
    host = host or host_identity()
    shared = shared_storage(instance)
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        owner = ownership(run, host, shared)
        if owner.kind == "other":
            log(f"left run {run.run_id} alone: it runs on host {owner.detail}")
            continue
        if owner.kind == "container":
            log(f"left run {run.run_id} alone: it runs in container {owner.detail} (Dagster's run monitoring checks it)")
            continue
        if owner.kind == "unknown":
            log(f"left run {run.run_id} alone: it records no host (launched before hosts were recorded); "
                "Dagster's run monitoring ends it after max_runtime_seconds, or fail it from the UI")
            continue
        message = interrupted_reason(host)
        if run.status == DagsterRunStatus.CANCELING:
            message = f"Cancellation completed at start-up. {message}"
        end_interrupted_run(instance, run, message, message, retry=False)
        failed.append(run.run_id)
    return failed


def set_pool_limits(instance: dg.DagsterInstance) -> None:
    instance.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 1)


def main() -> int:
    from orchestration.instance_lock import (
        EXIT_HELD, EXIT_UNAVAILABLE, InstanceLockHeld, InstanceUnavailable, acquire_instance_lock, held_by_parent,
    )

    from pipeline_common.dagster_home import dagster_home_step

    home = Path(os.environ.get("DAGSTER_HOME", ".")).resolve()
    lock = None
    if not held_by_parent():
        try:
            with dagster_home_step(home):  # the lock's record cannot be written (a full disk): 74 naming the home
                lock = acquire_instance_lock(home)
        except InstanceLockHeld as exc:
            print(f"not recovering: {exc}")
            return EXIT_HELD
        except InstanceUnavailable as exc:
            print(str(exc))
            return EXIT_UNAVAILABLE
    try:
        with dagster_home_step(home), dg.DagsterInstance.get() as instance:  # a full or damaged home: 74, named
            failed = fail_interrupted_runs(instance)
            set_pool_limits(instance)
    finally:
        if lock is not None:
            lock.release()
    for run_id in failed:
        print(f"marked interrupted run {run_id} failed (not retried automatically)")
    print(f"{len(failed)} interrupted run(s) of host {host_identity()} failed; pool {DUCKDB_POOL} limit 1")
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    sys.exit(run_main(lambda _argv: main(), None))
