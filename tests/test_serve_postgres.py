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
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
import yaml

from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240
HOUSEKEEPING_SCHEDULE = "dagster_housekeeping_schedule"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LAUNCH = """
mutation Launch($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
REPOS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
SCHEDULED_RUNS = """
query Scheduled($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status creationTime } } }
}
"""


def _test_pipeline_config(tmp: Path) -> Path:
    """pipeline.yaml with the arrival sensors off (they would start runs of their own) and the
    housekeeping schedule every minute, so a tick after the daemon's restart is seen quickly."""
    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    raw.setdefault("alerts", {}).setdefault("arrival_sensors", {})["running_by_default"] = False
    raw["jobs"]["housekeeping"]["cron"] = "* * * * *"
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class Deployment:
    """serve.py under test, with every process it ever had below it."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = tmp / "dagster_home_postgres"
        self.logs = tmp / "logs"
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "serve.py"), "--port", str(self.port),
             "--code-server-port", str(free_port()), "--dagster-home", str(self.home),
             "--log-dir", str(self.logs), "--backoff-initial", "1"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if os.name == "nt" else 0,
        )
        self.seen: dict[int, psutil.Process] = {}

    def snapshot(self) -> list[psutil.Process]:
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []
        for member in family:
            self.seen.setdefault(member.pid, member)
        return family

    def service(self, marker: str) -> psutil.Process | None:
        """The direct child of serve.py whose command line holds `marker`."""
        for process in self.snapshot():
            try:
                if process.ppid() == self.process.pid and marker in " ".join(process.cmdline()):
                    return process
            except psutil.Error:
                continue
        return None

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def wait_until_up(self, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve.py exited {self.process.returncode}: {self.log_tail()}"
            self.snapshot()
            try:
                if self.graphql(REPOS)["repositoriesOrError"]["nodes"]:
                    return
            except (requests.RequestException, KeyError, TypeError):
                pass
            time.sleep(1)
        raise AssertionError(f"webserver not up after {timeout}s: {self.log_tail()}")

    def launch(self, job: str) -> dict:
        (node,) = self.graphql(REPOS)["repositoriesOrError"]["nodes"]
        selector = {"repositoryName": node["name"], "repositoryLocationName": node["location"]["name"], "jobName": job}
        return self.graphql(LAUNCH, {"selector": selector})["launchRun"]

    def status(self, run_id: str) -> str:
        return self.graphql(RUN, {"id": run_id})["runOrError"]["status"]

    def wait_for(self, run_id: str, wanted: set[str], timeout: float = RUN_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            self.snapshot()
            status = self.status(run_id)
            if status in wanted or status in {"FAILURE", "CANCELED"}:
                return status
            time.sleep(1)
        raise AssertionError(f"run {run_id} still {status} after {timeout}s\n{self.log_tail()}")

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

    def log_tail(self) -> str:
        parts = []
        for name in ("serve.log", "daemon.log", "code_server.log", "webserver.log"):
            path = self.logs / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(parts)

    def stop(self) -> int:
        self.snapshot()
        if self.process.poll() is None:
            self.process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
        return self.process.wait(timeout=90)


def test_serve_runs_the_flow_on_postgres_and_survives_a_dead_daemon_and_code_server(
    tmp_path, isolated_env, sample_landing, postgres_server, postgres_db
):
    env = {
        **os.environ, **postgres_server.environment(postgres_db),
        "DATA_DIR": str(isolated_env), "LANDING_DIR": str(sample_landing),
        "PIPELINE_CONFIG": str(_test_pipeline_config(tmp_path)),
    }
    env.pop("DAGSTER_HOME", None)
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
        flow = deployment.launch("daily_sales_flow_job")["run"]["runId"]
        morning = deployment.launch("uk_morning_refresh_with_backup")["run"]["runId"]
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
                result = deployment.launch("dagster_housekeeping_job")
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
    leftovers = [p for p in deployment.seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, [(p.pid, p.cmdline()) for p in leftovers]
    for log_file in deployment.logs.glob("*.log"):
        assert postgres_server.password not in log_file.read_text(errors="replace"), log_file.name
