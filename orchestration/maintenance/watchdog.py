"""Run-worker watchdog: a run whose worker process is gone is failed, so the queue moves on.

The default run launcher cannot check a worker's health, and Dagster's run monitoring only
catches runs that never start or run past `max_runtime_seconds` (4 h). A worker killed (Task
Manager, an out-of-memory kill, a crash) while `dagster dev` stays up would leave its run STARTED,
holding the DuckDB slot and the one-DuckDB-run queue place, and the 07:15 refresh would wait
behind it. Every minute this sensor reads the worker's process id from the run's "Started process
for run (pid: N)" event and, when that process is gone (or the id now belongs to a younger
process), marks the run failed with the reason and frees its pool slots. The run-failure alert
sensor then sends its alert, and the queue starts the next run.

Only runs of this host are judged (`retail_sales/host`, orchestration.maintenance.interruption): a
process id means nothing on another host, and a run in a container (`docker/container_id`) records
pid 1 of its own container, so those are left to Dagster's run monitoring, which asks Docker.
A run failed here is retried automatically only where Dagster's rule says so (the job's
`dagster/max_retries`, from `run_retries` in pipeline.yaml), and its message says which.
"""

from __future__ import annotations

import json
import time

import dagster as dg
import psutil
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from orchestration.hosts import host_identity
from orchestration.maintenance.interruption import end_interrupted_run, ownership, shared_storage, would_retry

WATCHDOG_SENSOR = "run_worker_watchdog_sensor"
INTERVAL_SECONDS = 60
START_SLACK_SECONDS = 5.0  # the worker process starts a moment before the run records its start
RECHECK_PAUSE_SECONDS = 1.0


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the launcher recorded for the run's worker process (None: not recorded yet)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        message = event.message or entry.user_message or ""
        if "pid" in metadata and message.startswith("Started process for run"):
            try:
                return int(getattr(metadata["pid"], "value", metadata["pid"]))
            except (TypeError, ValueError):
                return None
    return None


def worker_alive(pid: int, run_started: float | None) -> bool:
    """Is `pid` still the run's worker? A dead, zombie or younger (reused pid) process is not."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # exists, owned by someone else: cannot be our worker's corpse
        return True
    return run_started is None or created <= run_started + START_SLACK_SECONDS


def dead_worker_reason(pid: int, host: str, retry: bool) -> str:
    what_next = (
        "Dagster retries it automatically now (the job's run_retries); the retry is linked on this run's page."
        if retry
        else "It is not retried automatically: re-execute it from the UI (Re-execute > From failure) if its "
        "data is still needed."
    )
    return (
        f"The run's worker process (pid {pid} on {host}) is gone while the run was in progress: it was killed, "
        "crashed or did not survive the PC sleeping. The run watchdog marked the run failed and freed its "
        f"DuckDB slot so queued runs can start. {what_next}"
    )



def fail_dead_runs(instance: dg.DagsterInstance, log=None) -> list[str]:
    """Fail every STARTED run whose worker process is gone; return their run ids."""
    failed = []
    host = host_identity()
    shared = shared_storage(instance)
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        if ownership(run, host, shared).kind != "own":
            continue  # another host's, a container's, or of unknown host: not ours to judge by pid
        pid = worker_pid(instance, run.run_id)
        if pid is None or worker_alive(pid, record.start_time):
            continue
        time.sleep(RECHECK_PAUSE_SECONDS)  # a worker that just finished writes its end event before exiting
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status != DagsterRunStatus.STARTED:
            continue
        retry = would_retry(instance, current)
        reason = dead_worker_reason(pid, host, retry)
        end_interrupted_run(instance, current, reason, reason, retry)
        if log is not None:
            log.warning(f"run {run.run_id} ({run.job_name}): worker pid {pid} gone; marked failed, slots freed"
                        f"{', retried automatically' if retry else ''}")
        failed.append(run.run_id)
    return failed


def build_watchdog_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=WATCHDOG_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=INTERVAL_SECONDS,
        description=(
            "Fails a run whose worker process is gone (killed, crashed, PC slept) and frees its DuckDB slot, "
            "so the failure is alerted and the next queued run starts."
        ),
    )
    def run_worker_watchdog_sensor(context: dg.SensorEvaluationContext):
        failed = fail_dead_runs(context.instance, context.log)
        if failed:
            context.update_cursor(json.dumps({"last_failed": failed}))
        return dg.SkipReason(f"{len(failed)} run(s) with a dead worker failed" if failed else "every run's worker is alive")

    return run_worker_watchdog_sensor
