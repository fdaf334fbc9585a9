"""A real supervised `dagster dev` killed in the middle of the dbt build (every process at once,
as a power cut or a crash would), then started again on the same home: the restart tells one
story (issue 26 item 1, contract section 7).

The interrupted `daily_sales_flow_job` (whose job asks for a whole-run retry,
`dagster/max_retries=1`) is FAILURE with a message saying it is not retried automatically;
`dagster/will_retry` is `false`; the retry daemon processes the failure and launches nothing;
no step is left executing (the dbt step ended as failed, naming the interruption); the failure
alert says the same; the supervisor's log names the run. Before this, Dagster recomputed the
tag to `true` while storing the failure and a retry started seconds after the restart.
"""

from __future__ import annotations

import json
import time

import dagster as dg
import psutil
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.instance.ref import InstanceRef

from tests.test_e2e_dagster_dev import Stack, sample_landing  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

FLOW = "daily_sales_flow_job"
DBT_STEP = "warehouse_dbt_models"
RUN = """
query Run($id: ID!) { runOrError(runId: $id) { ... on Run {
  status tags { key value } stepStats { stepKey status } } } }
"""
RUNS = "{ runsOrError { ... on Runs { results { runId status } } } }"
FAILURE_CURSOR = f"EVENT_LOG_CONSUMER_CURSOR-{DagsterEventType.RUN_FAILURE.value}"


def _run(stack: Stack, run_id: str) -> dict:
    return stack.graphql(RUN, {"id": run_id})["runOrError"]


def _until(what: str, check, timeout: float, stack: Stack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.snapshot()
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout}s\n{stack.log_tail()}")


def _kill_everything(stack: Stack) -> None:
    """Every process of the stack at once, with SIGKILL: nothing gets to clean up."""
    family = [psutil.Process(stack.process.pid), *stack.snapshot()]
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
    stack.process.wait(timeout=30)


def test_a_run_killed_mid_dbt_by_a_crash_is_failed_once_not_retried_and_says_so(tmp_path, isolated_env, sample_landing):  # noqa: F811
    first = Stack(tmp_path, isolated_env)
    try:
        first.wait_until_up(timeout=240)
        run_id = first.launch(FLOW)

        def dbt_running():
            run = _run(first, run_id)
            assert run["status"] not in {"FAILURE", "SUCCESS", "CANCELED"}, f"the flow ended before dbt: {run}"
            return any(s["stepKey"] == DBT_STEP and s["status"] == "IN_PROGRESS" for s in run["stepStats"])

        _until("the dbt step in progress", dbt_running, 400, first)
    finally:
        _kill_everything(first)

    second = Stack(tmp_path, isolated_env)
    try:
        second.wait_until_up(timeout=240)
        run = _run(second, run_id)
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run["status"] == "FAILURE"
        assert tags["dagster/max_retries"] == "1", "the job does ask for a whole-run retry"
        assert tags["dagster/will_retry"] == "false"
        assert [s for s in run["stepStats"] if s["status"] == "IN_PROGRESS"] == [], "no step left executing"
        assert {s["stepKey"]: s["status"] for s in run["stepStats"]}[DBT_STEP] == "FAILURE"

        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(second.home))) as instance:
            (failure,) = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
            message = failure.event_log_entry.dagster_event.message
            assert "not retried automatically" in message and "Re-execute > From failure" in message

            # The retry daemon reads failures by their id across all runs (SQLite: the index shard).
            failures = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
                after_cursor=-1, dagster_event_type={DagsterEventType.RUN_FAILURE}
            )
            (failure_id,) = [log_id for log_id, entry in failures.items() if entry.run_id == run_id]

            def daemon_processed_the_failure():
                values = instance.daemon_cursor_storage.get_cursor_values({FAILURE_CURSOR})
                return int(values.get(FAILURE_CURSOR) or -1) >= failure_id

            # The retry daemon has read the failure (its cursor is past it) and decided.
            _until("the retry daemon past the failure", daemon_processed_the_failure, 180, second)
            engine = [e.dagster_event.message or "" for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)]
            assert not [m for m in engine if "Retrying the run" in m]
        runs = second.graphql(RUNS)["runsOrError"]["results"]
        assert [r["runId"] for r in runs] == [run_id], f"a retry was launched: {runs}"

        alerts = isolated_env / "alerts"

        def the_alert():
            for path in alerts.glob("alerts_*.jsonl") if alerts.exists() else []:
                for line in path.read_text(encoding="utf-8").splitlines():
                    record = json.loads(line)
                    if run_id in json.dumps(record) and record["title"].startswith("Run failed"):
                        return record
            return None

        alert = _until("the failure alert", the_alert, 120, second)
        assert "not retried automatically" in json.dumps(alert)
        supervisor_log = (second.logs / "supervisor.log").read_text(encoding="utf-8")
        assert f"marked interrupted run {run_id} failed (not retried automatically)" in supervisor_log
    finally:
        assert second.stop() == 0
