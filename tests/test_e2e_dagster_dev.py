"""End to end: a real supervised `dagster dev` on a free loopback port, driven through GraphQL.

Runs the whole daily flow on generated sample data, sees a second DuckDB run wait in the queue,
kills the daemon and sees the supervisor bring the stack back, screenshots the asset graph with
headless Chromium, and checks that stopping the supervisor leaves no process behind.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
import yaml

from tests.plugins.browser import HOW_TO_GET_ONE, find_chromium
from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 300

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

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
RUN = 'query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }'
REPOS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"


def _config_without_arrival_sensors(tmp: Path) -> Path:
    """pipeline.yaml as is, but the landing-folder arrival sensors off: they would start their own
    runs on the sample files and make the run counts below depend on sensor timing."""
    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    raw.setdefault("alerts", {}).setdefault("arrival_sensors", {})["running_by_default"] = False
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class Stack:
    """The supervisor under test plus every process it ever had below it."""

    def __init__(self, tmp: Path, data_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = tmp / "dagster_home"
        self.logs = tmp / "logs"
        env = {**os.environ, "DATA_DIR": str(data_dir), "PIPELINE_CONFIG": str(_config_without_arrival_sensors(tmp))}
        env.pop("DAGSTER_HOME", None)
        flags = subprocess.CREATE_NEW_PROCESS_GROUP if os.name == "nt" else 0
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "supervisor.py"), "--port", str(self.port),
             "--dagster-home", str(self.home), "--log-dir", str(self.logs), "--backoff-initial", "1"],
            cwd=REPO, env=env, creationflags=flags,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"supervisor exited: {self.log_tail()}"
            self.snapshot()
            try:
                nodes = self.graphql(REPOS)["repositoriesOrError"]["nodes"]
                if nodes:
                    return
            except (requests.RequestException, KeyError, TypeError):
                pass
            time.sleep(1)
        raise AssertionError(f"webserver not up after {timeout}s: {self.log_tail()}")

    def selector(self, job: str) -> dict:
        (node,) = self.graphql(REPOS)["repositoriesOrError"]["nodes"]
        return {"repositoryName": node["name"], "repositoryLocationName": node["location"]["name"], "jobName": job}

    def launch(self, job: str) -> str:
        result = self.graphql(LAUNCH, {"selector": self.selector(job)})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def group_lineage_url(self, asset: str) -> str:
        query = 'query A($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode { groupName } } }'
        group = self.graphql(query, {"key": {"path": [asset]}})["assetNodeOrError"]["groupName"]
        selector = self.selector("x")
        location = f"{selector['repositoryName']}@{selector['repositoryLocationName']}"
        return f"{self.url}/locations/{location}/asset-groups/{group}/lineage"

    def status(self, run_id: str) -> str:
        return self.graphql(RUN, {"id": run_id})["runOrError"]["status"]

    def log_tail(self) -> str:
        parts = []
        for name in ("supervisor.log", "dagster.log"):
            path = self.logs / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def stop(self) -> int:
        self.snapshot()
        if self.process.poll() is None:
            self.process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
        return self.process.wait(timeout=90)


def _wait_for(stack: Stack, run_id: str, wanted: set[str], timeout: float = RUN_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        stack.snapshot()
        status = stack.status(run_id)
        if status in wanted or status in {"FAILURE", "CANCELED"}:
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} still {status} after {timeout}s\n{stack.log_tail()}")


def _daemon(stack: Stack) -> psutil.Process | None:
    for process in stack.snapshot():
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "dagster._daemon" in command or "dagster-daemon" in command:
            return process
    return None


def _dagster_devs(stack: Stack) -> list[psutil.Process]:
    """The supervisor's `dagster dev` children (found by command line, not by position)."""
    found = []
    for child in psutil.Process(stack.process.pid).children():
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "dagster" in command and "dev" in command:
            found.append(child)
    return found


def _visible_text(dom: str) -> str:
    """The text a page shows, in document order: no scripts, styles, tags or attributes (a name
    that only appears in embedded data or a URL does not count as drawn)."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return "".join(html.unescape(text).strip() for text in re.split(r"<[^>]*>", dom))


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    browser = find_chromium()
    if browser is None:
        pytest.fail(HOW_TO_GET_ONE)
    profile = tmp / "chromium-profile"
    command = [
        str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=25000", *extra, url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def sample_landing(isolated_env: Path) -> Path:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_sample_data.py"), "--days", "5", "--rows-per-day", "200",
         "--out", str(isolated_env / "landing")],
        cwd=REPO, capture_output=True, text=True, timeout=180, env={**os.environ, "DATA_DIR": str(isolated_env)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return isolated_env / "landing"


def test_supervised_dagster_dev_runs_the_flow_queues_duckdb_runs_and_survives_a_dead_daemon(
    tmp_path, isolated_env, sample_landing
):
    stack = Stack(tmp_path, isolated_env)
    try:
        stack.wait_until_up()

        # 1. The whole flow, launched like the UI does, plus a second DuckDB job right behind it.
        flow = stack.launch("daily_sales_flow_job")
        morning = stack.launch("uk_morning_refresh_with_backup")
        assert _wait_for(stack, flow, {"STARTED", "SUCCESS"}) in {"STARTED", "SUCCESS"}
        seen_second = set()  # the morning run's states while the flow is in progress
        while (flow_status := stack.status(flow)) in {"QUEUED", "STARTING", "STARTED"}:
            if flow_status == "STARTED":
                seen_second.add(stack.status(morning))
            stack.snapshot()
            time.sleep(1)
        assert stack.status(flow) == "SUCCESS", stack.log_tail()
        assert "QUEUED" in seen_second and not seen_second & {"STARTED", "FAILURE"}, seen_second
        assert _wait_for(stack, morning, {"SUCCESS"}) == "SUCCESS", stack.log_tail()
        exports = isolated_env / "exports"
        assert (exports / "executive_daily_sales.hyper").is_file()
        assert (exports / "daily_sales_summary.hyper").is_file()
        assert len(list((isolated_env / "warehouse" / "backup").glob("analytics_*.duckdb"))) == 1

        # 2. The asset graph in a real browser: the global lineage (screenshot), then each
        #    group's lineage page, where the assets are drawn by name.
        screenshot = tmp_path / "asset_graph.png"
        _chromium(f"{stack.url}/asset-groups", tmp_path, f"--screenshot={screenshot}")
        assert screenshot.stat().st_size > 20_000
        for name in ("uk_orders_azure", "qi_executive_daily_sales", "tableau_executive_daily_sales"):
            url = stack.group_lineage_url(name)
            drawn = _visible_text(_chromium(url, tmp_path, "--dump-dom").stdout)
            assert name in drawn, f"{name} not drawn on {url}; page text: {drawn[:2000]}"

        # 2b. The doctor on this healthy set-up: every check OK (or skipped with a reason), exit 0.
        doctor = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "doctor.py"), "--port", str(stack.port),
             "--dagster-home", str(stack.home)],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PIPELINE_CONFIG": str(tmp_path / "pipeline.yaml")},
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "PROBLEM" not in doctor.stdout and "OK       server: Dagster" in doctor.stdout
        assert "OK       port:" in doctor.stdout and "held by this pipeline's Dagster" in doctor.stdout

        # 3. Kill the daemon: dagster dev exits, the supervisor starts it again.
        daemon = _daemon(stack)
        assert daemon is not None, "no dagster daemon among the supervisor's processes"
        [first_dev] = _dagster_devs(stack)
        daemon.kill()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stack.snapshot()
            devs = [p.pid for p in _dagster_devs(stack)]
            new_daemon = _daemon(stack)
            if devs and first_dev.pid not in devs and new_daemon and new_daemon.pid != daemon.pid:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"stack not restarted\n{stack.log_tail()}")
        stack.wait_until_up()
        assert "exited with code" in (stack.logs / "supervisor.log").read_text()
    finally:
        code = stack.stop()

    # 4. Nothing left behind.
    assert code == 0
    time.sleep(1)
    leftovers = [p for p in stack.seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, [(p.pid, p.cmdline()) for p in leftovers]
