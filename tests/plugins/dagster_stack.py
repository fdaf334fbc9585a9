"""The one end-to-end harness: a process that serves Dagster (scripts/supervisor.py's `dagster dev`, or
scripts/serve.py's code server, daemon and webserver) on a free loopback port, driven through GraphQL,
with every process it ever had below it remembered so a test can prove that none is left behind.

tests/test_e2e_dagster_dev.py and tests/test_serve_postgres.py both use it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
import yaml

from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[2]

LAUNCH = """
mutation Launch($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector}) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
REPOS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
ENDED = {"FAILURE", "CANCELED"}


def test_pipeline_config(tmp: Path, **jobs_cron: str) -> Path:
    """pipeline.yaml as is, but the arrival sensors off (they would start runs of their own on the sample
    files and make run counts depend on sensor timing), and `jobs.<name>.cron` overridden as given."""
    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    raw.setdefault("alerts", {}).setdefault("arrival_sensors", {})["running_by_default"] = False
    for name, cron in jobs_cron.items():
        raw["jobs"][name]["cron"] = cron
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


test_pipeline_config.__test__ = False  # a helper, not a test


class DagsterStack:
    """`python <script> --port P --dagster-home H --log-dir L --backoff-initial 1 [extra]` under test."""

    script: str = ""
    log_names: tuple[str, ...] = ()
    log_lines = 40
    run_timeout = 300.0

    def __init__(self, home: Path, logs: Path, env: dict[str, str], *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.logs = logs
        env = dict(env)
        env.pop("DAGSTER_HOME", None)
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / self.script), "--port", str(self.port),
             "--dagster-home", str(home), "--log-dir", str(logs), "--backoff-initial", "1", *extra],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if os.name == "nt" else 0,
        )
        self.seen: dict[int, psutil.Process] = {}

    def snapshot(self) -> list[psutil.Process]:
        """The processes below the script now (and remembered in `seen`)."""
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []
        for member in family:
            self.seen.setdefault(member.pid, member)
        return family

    def leftovers(self) -> list[psutil.Process]:
        return [p for p in self.seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def wait_until_up(self, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.script} exited {self.process.returncode}: {self.log_tail()}"
            self.snapshot()
            try:
                if self.graphql(REPOS)["repositoriesOrError"]["nodes"]:
                    return
            except (requests.RequestException, KeyError, TypeError):
                pass
            time.sleep(1)
        raise AssertionError(f"webserver not up after {timeout}s: {self.log_tail()}")

    def selector(self, job: str) -> dict:
        (node,) = self.graphql(REPOS)["repositoriesOrError"]["nodes"]
        return {"repositoryName": node["name"], "repositoryLocationName": node["location"]["name"], "jobName": job}

    def launch_result(self, job: str) -> dict:
        """The GraphQL answer to launching `job` (LaunchRunSuccess or the error)."""
        return self.graphql(LAUNCH, {"selector": self.selector(job)})["launchRun"]

    def launch(self, job: str) -> str:
        result = self.launch_result(job)
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def status(self, run_id: str) -> str:
        return self.graphql(RUN, {"id": run_id})["runOrError"]["status"]

    def wait_for(self, run_id: str, wanted: set[str], timeout: float | None = None) -> str:
        """The run's status once it is one of `wanted` (or ended otherwise)."""
        timeout = timeout or self.run_timeout
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            self.snapshot()
            status = self.status(run_id)
            if status in wanted or status in ENDED:
                return status
            time.sleep(1)
        raise AssertionError(f"run {run_id} still {status} after {timeout}s\n{self.log_tail()}")

    def log_tail(self) -> str:
        parts = []
        for name in self.log_names:
            path = self.logs / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-self.log_lines:]))
        return "\n".join(parts)

    def stop(self) -> int:
        """Stop the script as the service manager does (SIGTERM; Windows: Ctrl+Break); its exit code."""
        self.snapshot()
        if self.process.poll() is None:
            self.process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
        return self.process.wait(timeout=90)
