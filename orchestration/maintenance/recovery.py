"""Start-up repair of the Dagster instance, run by scripts/supervisor.py before `dagster dev` starts.

Runs a reboot left STARTING/STARTED/CANCELING have no process behind them any more: they are
marked failed (or canceled) with a reason, are not auto-retried, and their pool slots are freed.
The duckdb pool's limit is set to 1 explicitly. Run as `python -m orchestration.maintenance.recovery`.
"""

from __future__ import annotations

import sys

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import WILL_RETRY_TAG

from orchestration.resources import DUCKDB_POOL

IN_FLIGHT = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
INTERRUPTED_REASON = (
    "Dagster was not running when this run should have finished (the desktop restarted or the "
    "server was stopped), so the run was marked failed at the next start-up. Re-run it from the "
    "UI (Re-execute > From failure) if its data is still needed."
)


def fail_interrupted_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every in-flight run failed (CANCELING ones canceled) and free its pool slots."""
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        # The interruption is not the job's fault; a next-morning auto-retry would dodge the
        # late-tick rule, so the analyst decides (docs/operations.md).
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "false"})
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=f"Cancellation completed at start-up. {INTERRUPTED_REASON}")
        else:
            instance.report_run_failed(run, message=INTERRUPTED_REASON)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


def set_pool_limits(instance: dg.DagsterInstance) -> None:
    instance.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 1)


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        failed = fail_interrupted_runs(instance)
        set_pool_limits(instance)
    for run_id in failed:
        print(f"marked interrupted run {run_id} failed")
    print(f"{len(failed)} interrupted run(s) failed; pool {DUCKDB_POOL} limit 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
