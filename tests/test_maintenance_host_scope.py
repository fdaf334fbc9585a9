"""Start-up recovery and the run-worker watchdog judge only their own host's runs, and an
interrupted run tells one story: its message, `dagster/will_retry`, the retry daemon's own
decision and its steps agree (issue 26 item 1, issue 28 item 2).

Classes of in-flight runs, each on a real SQLite instance with a worker process that is gone:
tagged with this host; tagged with another host; run in a container (`docker/container_id`);
untagged (launched before hosts were recorded: on a SQLite home that is this host by
construction). Retry classes: a job with `dagster/max_retries` and one without.
"""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.events import EngineEventData
from dagster._core.storage.tags import MAX_RETRIES_TAG, WILL_RETRY_TAG
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.hosts import CONTAINER_TAG, HOST_TAG
from orchestration.maintenance.recovery import fail_interrupted_runs
from orchestration.maintenance.watchdog import fail_dead_runs
from orchestration.resources import DUCKDB_POOL

THIS_HOST = "host-a"


@dg.asset(pool=DUCKDB_POOL)
def warehouse_step() -> None:
    """Stands in for the dbt step."""


def _job():
    return dg.define_asset_job("interrupted_job", selection=[warehouse_step]).resolve(
        asset_graph=dg.Definitions(assets=[warehouse_step]).resolve_asset_graph()
    )


def _dead_pid() -> int:
    worker = subprocess.Popen([sys.executable, "-c", "pass"])
    worker.wait()
    return worker.pid


def _in_flight_run(instance: dg.DagsterInstance, tags: dict[str, str], pid: int) -> dg.DagsterRun:
    """A STARTED run whose step started and never ended, holding the DuckDB slot, worker `pid`."""
    job = _job()
    run = instance.create_run_for_job(job, tags=tags)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=job.name))
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    instance.report_dagster_event(
        dg.DagsterEvent(
            event_type_value="STEP_START", job_name=job.name, step_key="warehouse_step",
            node_handle=NodeHandle("warehouse_step", None), step_kind_value="COMPUTE",
        ),
        run_id=run.run_id,
    )
    assert instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, run.run_id, "warehouse_step").is_claimed
    return instance.get_run_by_id(run.run_id)


RUN_CLASSES = {
    "this host": ({HOST_TAG: THIS_HOST}, True),
    "another host": ({HOST_TAG: "host-b"}, False),
    "a container": ({HOST_TAG: THIS_HOST, CONTAINER_TAG: "4f1c0ffee"}, False),
    "untagged, SQLite home": ({}, True),
}


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOST_ID", THIS_HOST)
    with dg.DagsterInstance.local_temp(str(tmp_path), overrides={"run_retries": {"enabled": True}}) as inst:
        inst.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 10)
        yield inst


@pytest.mark.parametrize("judge", ["recovery", "watchdog"])
def test_only_this_hosts_runs_are_failed(instance, judge):
    runs = {name: _in_flight_run(instance, tags, _dead_pid()) for name, (tags, _) in RUN_CLASSES.items()}
    failed = fail_interrupted_runs(instance, log=lambda _: None) if judge == "recovery" else fail_dead_runs(instance)
    expected = {runs[name].run_id for name, (_, ours) in RUN_CLASSES.items() if ours}
    assert set(failed) == expected
    for name, (_, ours) in RUN_CLASSES.items():
        status = instance.get_run_by_id(runs[name].run_id).status
        assert status == (dg.DagsterRunStatus.FAILURE if ours else dg.DagsterRunStatus.STARTED), name
    claimed = {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots}
    assert claimed == {runs[name].run_id for name, (_, ours) in RUN_CLASSES.items() if not ours}


def _story(instance: dg.DagsterInstance, run_id: str) -> tuple[str, str, bool, list[str]]:
    run = instance.get_run_by_id(run_id)
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].dagster_event.message
    executing = [s.step_key for s in instance.get_run_step_stats(run_id) if s.status.value == "IN_PROGRESS"]
    return failure, run.tags.get(WILL_RETRY_TAG), should_retry(run, instance), executing


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_retries=st.sampled_from([None, "0", "1", "2"]))
def test_a_restart_interrupted_run_is_never_retried_and_every_layer_says_so(instance, max_retries):
    tags = {HOST_TAG: THIS_HOST, **({MAX_RETRIES_TAG: max_retries} if max_retries else {})}
    run = _in_flight_run(instance, tags, _dead_pid())
    assert run.run_id in fail_interrupted_runs(instance, log=lambda _: None)
    message, tag, daemon_retries, executing = _story(instance, run.run_id)
    assert "not retried automatically" in message and "Re-execute > From failure" in message
    assert tag == "false", "Dagster recomputes the tag from dagster/max_retries while storing the failure"
    assert daemon_retries is False, "the retry daemon's own rule, reading the run as it will"
    assert executing == [], "no step of the failed run is left executing"
    [step_failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert "interrupted" in step_failure.dagster_event.message
    assert instance.get_run_by_id(run.run_id).tags["dagster/failure_reason"] == "UNEXPECTED_TERMINATION"


@pytest.mark.parametrize("max_retries, retried", [(None, False), ("0", False), ("1", True)])
def test_a_dead_worker_is_retried_exactly_when_its_message_says_so(instance, max_retries, retried):
    tags = {HOST_TAG: THIS_HOST, **({MAX_RETRIES_TAG: max_retries} if max_retries else {})}
    run = _in_flight_run(instance, tags, _dead_pid())
    assert fail_dead_runs(instance) == [run.run_id]
    message, tag, daemon_retries, executing = _story(instance, run.run_id)
    assert tag == str(retried).lower()
    assert daemon_retries is retried
    assert ("retries it automatically" in message) is retried
    assert ("not retried automatically" in message) is not retried
    assert executing == []
