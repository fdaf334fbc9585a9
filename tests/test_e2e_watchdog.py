"""End to end: a run worker SIGKILLed under a real supervised `dagster dev` (which stays up) is marked failed
within 5 minutes, the DuckDB run queued behind it starts, and one alert says the worker died.

Under `dagster dev` the code server notices its own dead worker; the run watchdog covers a worker whose
code server went away (tests/test_ops_watchdog.py). Either way the queue must move on."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psutil
import pytest

from tests.test_e2e_dagster_dev import Stack, sample_landing  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WATCHDOG_LIMIT_S = 300


EVENTS = """
query Events($id: ID!) {
  runOrError(runId: $id) { ... on Run { eventConnection { events { __typename ... on MessageEvent { message } } } } }
}
"""


def _worker(stack: Stack, run_id: str, timeout: float = 120) -> psutil.Process:
    """The run's worker process, as its launcher announced it in the run's log ("pid: N")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = stack.graphql(EVENTS, {"id": run_id})["runOrError"]["eventConnection"]["events"]
        for event in events:
            match = re.search(r"Started process for run \(pid: (\d+)\)", event.get("message") or "")
            if match:
                return psutil.Process(int(match.group(1)))
        time.sleep(0.5)
    raise AssertionError(f"no worker process announced for run {run_id}\n{stack.log_tail()}")


def _alerts_for(data_dir: Path, run_id: str) -> list[dict]:
    found = []
    for path in (data_dir / "alerts").glob("alerts_*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if run_id in json.dumps(record):
                found.append(record)
    return found


def test_killed_run_worker_is_failed_and_the_queue_moves_on(tmp_path, isolated_env, sample_landing):  # noqa: F811
    stack = Stack(tmp_path, isolated_env)
    orphans: list[psutil.Process] = []
    try:
        stack.wait_until_up()
        first = stack.launch("uk_orders_arrival_job")
        second = stack.launch("de_orders_arrival_job")  # also writes DuckDB: queued behind the first
        assert stack.wait_for(first, {"STARTED"}) == "STARTED", stack.log_tail()
        worker = _worker(stack, first)
        orphans = worker.children(recursive=True)
        assert stack.status(second) == "QUEUED"
        assert stack.status(first) == "STARTED"

        worker.kill()  # SIGKILL: no clean-up, no run event; dagster dev stays up
        killed_at = time.monotonic()
        assert stack.wait_for(first, {"FAILURE"}, timeout=WATCHDOG_LIMIT_S + 30) == "FAILURE", stack.log_tail()
        assert time.monotonic() - killed_at < WATCHDOG_LIMIT_S
        assert stack.process.poll() is None, "the supervised server stayed up"

        assert stack.wait_for(second, {"STARTED", "SUCCESS"}, timeout=180) in {"STARTED", "SUCCESS"}, stack.log_tail()

        deadline = time.monotonic() + 120
        while not _alerts_for(isolated_env, first) and time.monotonic() < deadline:
            time.sleep(2)
        alerts = _alerts_for(isolated_env, first)
        assert len(alerts) == 1, alerts
        assert alerts[0]["route"] == "technical", alerts
        said = json.dumps(alerts[0]["payload"])
        assert "worker process" in said and ("SIGKILL" in said or f"pid {worker.pid}" in said), alerts
        time.sleep(35)  # another run-alert sensor interval: still one alert
        assert len(_alerts_for(isolated_env, first)) == 1
        # The queued run ran to its end (its own outcome depends on the reference data this test never synced).
        assert stack.wait_for(second, {"SUCCESS"}, timeout=300) in {"SUCCESS", "FAILURE"}, stack.log_tail()
    finally:
        stack.stop()
        for process in orphans:  # the killed worker's children (the sync/dbt it had started), ours to end
            try:
                process.kill()
            except psutil.Error:
                pass
