"""End to end: a real supervised `dagster dev` on a free loopback port, driven through GraphQL.

Runs the whole daily flow on generated sample data, sees a second DuckDB run wait in the queue,
kills the daemon and sees the supervisor bring the stack back, screenshots the asset graph with
headless Chromium, and checks that stopping the supervisor leaves no process behind.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.plugins.browser import HOW_TO_GET_ONE, find_chromium
from tests.plugins.dagster_stack import DagsterStack, test_pipeline_config

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 300

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

class Stack(DagsterStack):
    """scripts/supervisor.py under test (one `dagster dev` below it) plus every process it ever had."""

    script = "supervisor.py"
    log_names = ("supervisor.log", "dagster.log")
    run_timeout = RUN_TIMEOUT_S

    def __init__(self, tmp: Path, data_dir: Path):
        env = {**os.environ, "DATA_DIR": str(data_dir), "PIPELINE_CONFIG": str(test_pipeline_config(tmp))}
        super().__init__(tmp / "dagster_home", tmp / "logs", env)

    def group_lineage_url(self, asset: str) -> str:
        query = 'query A($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode { groupName } } }'
        group = self.graphql(query, {"key": {"path": [asset]}})["assetNodeOrError"]["groupName"]
        selector = self.selector("x")
        location = f"{selector['repositoryName']}@{selector['repositoryLocationName']}"
        return f"{self.url}/locations/{location}/asset-groups/{group}/lineage"


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
        assert stack.wait_for(flow, {"STARTED", "SUCCESS"}) in {"STARTED", "SUCCESS"}
        seen_second = set()  # the morning run's states while the flow is in progress
        while (flow_status := stack.status(flow)) in {"QUEUED", "STARTING", "STARTED"}:
            if flow_status == "STARTED":
                seen_second.add(stack.status(morning))
            stack.snapshot()
            time.sleep(1)
        assert stack.status(flow) == "SUCCESS", stack.log_tail()
        assert "QUEUED" in seen_second and not seen_second & {"STARTED", "FAILURE"}, seen_second
        assert stack.wait_for(morning, {"SUCCESS"}) == "SUCCESS", stack.log_tail()
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
            env={**os.environ, "PIPELINE_CONFIG": str(tmp_path / "pipeline.yaml"), "TZ": "Europe/London"},
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
    leftovers = stack.leftovers()
    assert not leftovers, [(p.pid, p.cmdline()) for p in leftovers]
