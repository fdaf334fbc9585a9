"""End to end on the team server: scripts/serve.py runs the code server, the daemon and the
webserver as separate processes against a real PostgreSQL server, driven through GraphQL.

The daemon is killed and comes back (schedules resume); the daily flow runs QUEUED -> STARTED ->
SUCCESS with its materializations in Postgres while a second DuckDB run waits QUEUED; the code
server is killed during the flow and comes back (the flow still finishes, the next runs launch
with no manual reload, the daemon and webserver keep their pids); the webserver is killed and
comes back alone; stopping serve.py leaves nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.plugins.dagster_stack import DagsterStack, test_pipeline_config
from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240
HOUSEKEEPING_SCHEDULE = "dagster_housekeeping_schedule"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SCHEDULED_RUNS = """
query Scheduled($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status creationTime } } }
}
"""


class Deployment(DagsterStack):
    """scripts/serve.py under test (code server, daemon and webserver below it) plus every process it ever had."""

    script = "serve.py"
    log_names = ("serve.log", "daemon.log", "code_server.log", "webserver.log")
    log_lines = 25
    run_timeout = RUN_TIMEOUT_S

    def __init__(self, tmp: Path, env: dict[str, str]):
        super().__init__(tmp / "dagster_home_postgres", tmp / "logs", env, "--code-server-port", str(free_port()))

    def service(self, marker: str) -> psutil.Process | None:
        """The direct child of serve.py whose command line holds `marker`."""
        for process in self.snapshot():
            try:
                if process.ppid() == self.process.pid and marker in " ".join(process.cmdline()):
                    return process
            except psutil.Error:
                continue
        return None

    def kill_and_wait_for_new(self, marker: str, timeout: float = 90) -> tuple[int, int]:
        old = self.service(marker)
        assert old is not None, f"no {marker} process under serve.py"
        old.kill()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.service(marker)
            if new is not None and new.pid != old.pid:
                return old.pid, new.pid
            time.sleep(0.5)
        raise AssertionError(f"{marker} not restarted\n{self.log_tail()}")


def test_serve_runs_the_flow_on_postgres_and_survives_a_dead_daemon_and_code_server(
    tmp_path, isolated_env, sample_landing, postgres_server, postgres_db
):
    env = {
        **os.environ, **postgres_server.environment(postgres_db),
        "DATA_DIR": str(isolated_env), "LANDING_DIR": str(sample_landing),
        "PIPELINE_CONFIG": str(test_pipeline_config(tmp_path, housekeeping="* * * * *")),
    }
    deployment = Deployment(tmp_path, env)
    try:
        deployment.wait_until_up()
        # serve.py ran `dagster instance migrate`: Dagster's schema is in the Postgres database.
        tables = {row[0] for row in postgres_server.query(postgres_db, "select tablename from pg_tables")}
        assert {"runs", "event_logs", "asset_keys", "jobs", "job_ticks", "alembic_version"} <= tables
        assert not list(deployment.home.rglob("*.db")), "nothing may be stored in SQLite"

        # 1. Kill the daemon: serve.py starts a new one; the webserver and code server stay.
        webserver, code_server = deployment.service("dagster_webserver"), deployment.service("api grpc")
        _, new_daemon = deployment.kill_and_wait_for_new("dagster._daemon")
        restarted_at = time.time()
        assert deployment.service("dagster_webserver").pid == webserver.pid
        assert deployment.service("api grpc").pid == code_server.pid

        # 2. The flow through the restarted daemon, and a second DuckDB run right behind it.
        flow = deployment.launch("daily_sales_flow_job")
        morning = deployment.launch("uk_morning_refresh_with_backup")
        assert deployment.wait_for(flow, {"STARTED", "SUCCESS"}) == "STARTED", deployment.log_tail()
        seen_second = {deployment.status(morning)}

        # 3. Kill the code server while the flow is in progress: the flow's run worker carries on,
        #    the daemon and webserver keep their pids and pick the new code server up by themselves.
        _, new_code_server = deployment.kill_and_wait_for_new("api grpc")
        assert deployment.service("dagster._daemon").pid == new_daemon
        assert deployment.service("dagster_webserver").pid == webserver.pid
        while (flow_status := deployment.status(flow)) in {"QUEUED", "STARTING", "STARTED"}:
            seen_second.add(deployment.status(morning))
            deployment.snapshot()
            time.sleep(1)
        assert flow_status == "SUCCESS", deployment.log_tail()
        assert seen_second == {"QUEUED"}, seen_second
        materialized = {
            row[0] for row in postgres_server.query(
                postgres_db,
                "select asset_key from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
                (flow,),
            )
        }
        assert {'["uk_orders_azure"]', '["qi_executive_daily_sales"]', '["tableau_executive_daily_sales"]'} <= materialized
        assert (isolated_env / "exports" / "executive_daily_sales.hyper").is_file()

        # The next runs launch through the new code server, nobody pressing Reload: one launched
        # through GraphQL now, and the queued DuckDB run, dequeued by the daemon.
        deadline = time.monotonic() + 90
        while True:
            try:
                result = deployment.launch_result("dagster_housekeeping_job")
            except requests.HTTPError as exc:  # the webserver answers 500 while it reconnects
                result = {"__typename": str(exc)}
            if result["__typename"] == "LaunchRunSuccess":
                break
            assert time.monotonic() < deadline, f"no launch after the code server restart: {result}\n{deployment.log_tail()}"
            time.sleep(2)
        assert deployment.wait_for(result["run"]["runId"], {"SUCCESS"}) == "SUCCESS", deployment.log_tail()
        # The queued DuckDB run was launched by the daemon through the new code server. (It is
        # not waited for: the desktop e2e test runs it to the end; here serve.py's stop ends it.)
        assert deployment.wait_for(morning, {"STARTED", "SUCCESS"}) in {"STARTED", "SUCCESS"}, deployment.log_tail()
        assert deployment.service("api grpc").pid == new_code_server

        # 4. Schedules resumed after the daemon's restart: the every-minute housekeeping schedule
        #    launched a run (on Postgres) after it, and that run succeeded.
        deadline = time.monotonic() + 90
        tags = [{"key": "dagster/schedule_name", "value": HOUSEKEEPING_SCHEDULE}]
        while True:
            runs = deployment.graphql(SCHEDULED_RUNS, {"tags": tags})["runsOrError"]["results"]
            resumed = [r for r in runs if r["creationTime"] > restarted_at and r["status"] == "SUCCESS"]
            if resumed:
                break
            assert time.monotonic() < deadline, f"no scheduled run after the daemon restart: {runs}\n{deployment.log_tail()}"
            time.sleep(2)
        # 5. Kill the webserver: only it is replaced, and the UI answers again.
        deployment.kill_and_wait_for_new("dagster_webserver")
        deployment.wait_until_up()
        assert deployment.service("dagster._daemon").pid == new_daemon
        assert deployment.service("api grpc").pid == new_code_server
        log_text = (deployment.logs / "serve.log").read_text()
        for name in ("daemon", "code_server", "webserver"):
            assert log_text.count(f"{name} (pid") == 1, log_text
    finally:
        code = deployment.stop()

    # 6. Nothing left behind, and no password in any log.
    assert code == 0
    time.sleep(1)
    leftovers = deployment.leftovers()
    assert not leftovers, [(p.pid, p.cmdline()) for p in leftovers]
    for log_file in deployment.logs.glob("*.log"):
        assert postgres_server.password not in log_file.read_text(errors="replace"), log_file.name
