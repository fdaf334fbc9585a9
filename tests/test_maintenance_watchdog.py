"""The run-worker watchdog on a real instance with a real worker process: a run whose worker is killed is
failed with the reason and its DuckDB pool slot freed; a run whose worker lives is left alone."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
from dagster._core.events import EngineEventData

from orchestration.alerts.run_alerts import build_run_alert_sensors
from orchestration.alerts.slack import SlackAlerts
from orchestration.maintenance.watchdog import fail_dead_runs
from orchestration.resources import DUCKDB_POOL
from pipeline_common.config import Alerts


@dg.asset(pool=DUCKDB_POOL)
def slow_asset() -> None:
    """Stands in for a DuckDB step."""


def _started_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    job = dg.define_asset_job("watched_job", selection=[slow_asset]).resolve(
        asset_graph=dg.Definitions(assets=[slow_asset]).resolve_asset_graph()
    )
    run = instance.create_run_for_job(job)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=job.name))
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return instance.get_run_by_id(run.run_id)


def test_dead_worker_fails_its_run_and_frees_the_slot(tmp_path, slack_server, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", slack_server.webhook_url("technical"))
    slack = SlackAlerts(routes={"technical": "SLACK_WEBHOOK_TECHNICAL"}, max_attempts=1)
    [failure_sensor] = [s for s in build_run_alert_sensors(Alerts(), dg.DefaultSensorStatus.RUNNING) if "failure" in s.name]
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        failure_sensor.evaluate_tick(first)  # the alert sensor starts from now
        instance.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 1)
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        alive_worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            dead = _started_run(instance, worker.pid)
            alive = _started_run(instance, alive_worker.pid)
            assert instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, dead.run_id, "slow_asset").is_claimed
            assert fail_dead_runs(instance) == []  # both workers alive

            worker.kill()
            worker.wait()
            assert fail_dead_runs(instance) == [dead.run_id]
            assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
            failure = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
            assert f"worker process (pid {worker.pid} on " in failure.dagster_event.message
            assert "not retried automatically" in failure.dagster_event.message
            info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
            assert info.active_slot_count == 0, "the dead run's DuckDB slot is free again"
            assert fail_dead_runs(instance) == [], "failed once"

            again = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack})
            failure_sensor.evaluate_tick(again)
            [alert] = slack_server.for_route("technical")  # one alert, saying why
            assert alert["text"] == "[ERROR] Run failed: watched_job"
            assert f"worker process (pid {worker.pid} on " in str(alert["blocks"])
        finally:
            for process in (worker, alive_worker):
                process.kill()
                process.wait()


def test_a_worker_the_code_server_saw_die_is_alerted_with_the_signal(tmp_path, slack_server, monkeypatch):
    """Under `dagster dev` the code server fails a run whose worker it saw die, with a generic message and the
    cause in an engine event; the alert says which."""
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", slack_server.webhook_url("technical"))
    slack = SlackAlerts(routes={"technical": "SLACK_WEBHOOK_TECHNICAL"}, max_attempts=1)
    [failure_sensor] = [s for s in build_run_alert_sensors(Alerts(), dg.DefaultSensorStatus.RUNNING) if "failure" in s.name]
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        failure_sensor.evaluate_tick(first)
        run = _started_run(instance, 4242)
        instance.report_engine_event(f"[DagsterApiServer] Run execution process for {run.run_id} was terminated by signal 9 (SIGKILL).", run)
        instance.report_run_failed(run)  # what dagster's gRPC server does, without a message
        failure_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack}))
    [alert] = slack_server.for_route("technical")
    assert "The run's worker process died: Run execution process for" in str(alert["blocks"])
    assert "terminated by signal 9 (SIGKILL)" in str(alert["blocks"])


def test_a_live_process_younger_than_the_run_is_not_its_worker(tmp_path):
    """Class: the recorded pid now belongs to a live, unrelated process (the worker died, the PC rebooted or the
    pid was reused): it started after the run, so it cannot be the run's worker and the run is failed; a live
    process older than the run's start is the worker and its run is left alone."""
    import datetime as dt

    import time_machine

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        older = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        younger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            # A run that started an hour ago whose recorded pid is held by a process started just now.
            with time_machine.travel(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1), tick=True):
                stale = _started_run(instance, younger.pid)
            # A run started now whose worker (started before it) lives.
            current = _started_run(instance, older.pid)
            assert fail_dead_runs(instance) == [stale.run_id]
            assert younger.poll() is None, "the unrelated process is left running"
            assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(current.run_id).status == dg.DagsterRunStatus.STARTED
        finally:
            for process in (older, younger):
                process.kill()
                process.wait()
