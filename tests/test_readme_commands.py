"""The README works as written: every fenced shell command runs in a fresh shell (no venv activated,
no project variables but the test's private DATA_DIR and DAGSTER_HOME), in order, as a newcomer
would paste them. `scripts/start.sh` brings up the UI on a free loopback port with the demo's
persistent home, and the demo's run is listed under its job, as the UI asks for it.

Commands marked in their comment as `Windows only` or `needs credentials` are not run here;
Windows commands live in `bat` blocks (checked for existence of what they name).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
WINDOWS_LANGUAGES = {"bat", "cmd", "batch", "powershell", "ps1"}
SKIP_MARKERS = ("windows only", "needs credentials")
SERVER_COMMAND = "scripts/start.sh"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

JOB_RUNS = """
query JobRuns($job: String!, $repo: String!, $location: String!, $label: String!) {
  runsOrError(filter: {pipelineName: $job, tags: [{key: ".dagster/repository", value: $label}]}) {
    ... on Runs { results { runId status } }
  }
  pipelineOrError(params: {pipelineName: $job, repositoryName: $repo, repositoryLocationName: $location}) {
    ... on Pipeline { runs { runId } }
  }
}
"""
RUN_ORIGIN = """
query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { pipelineName repositoryOrigin { repositoryName repositoryLocationName } } }
}
"""
REPOS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    skipped_because: str | None


def readme_commands(text: str) -> tuple[list[Command], list[tuple[int, str]]]:
    """Shell commands of the fenced bash/sh blocks (continuations joined), and the Windows blocks' lines."""
    commands: list[Command] = []
    windows: list[tuple[int, str]] = []
    language: str | None = None
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^```(\S*)", line)
        if fence:
            language = None if language is not None else fence.group(1).lower()
            continue
        if language in WINDOWS_LANGUAGES and line.strip():
            windows.append((number, line.strip()))
        if language not in SHELL_LANGUAGES:
            continue
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        command = pending + stripped
        pending = ""
        comment = command.split(" #", 1)[1].lower() if " #" in command else ""
        marker = next((m for m in SKIP_MARKERS if m in comment), None)
        commands.append(Command(start, command, marker))
    return commands, windows


def test_the_readme_has_shell_commands_and_marks_what_it_does_not_run():
    commands, windows = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    texts = [c.text for c in commands]
    assert any(t.startswith("scripts/demo.sh") for t in texts)
    assert any(t.startswith(SERVER_COMMAND) for t in texts)
    # a bare `python` or `dbt` fails in a fresh shell: the README calls the venv's explicitly
    for command in commands:
        first = shlex.split(command.text, comments=True)[0]
        assert first not in {"python", "python3", "dbt", "dagster", "dg", "pip"}, (command.line, command.text)
    for number, line in windows:
        if line.lower().startswith(("rem", "::")):
            continue
        tokens = line.split()
        assert not tokens[0].startswith("python"), (number, line)  # the venv's python, explicitly
        for token in tokens:
            if ("\\" in token or token.endswith(".bat")) and not token.startswith(".venv"):
                assert (REPO / token.replace("\\", "/")).exists(), (number, token)


def _fresh_env(tmp: Path, port: int) -> dict[str, str]:
    """What a new terminal has: PATH, HOME, a locale. Plus the test's private data and home."""
    home = tmp / "user_home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DATA_DIR": str(tmp / "data"),
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_PORT": str(port),
        "DEMO_DAYS": "2",
        "DEMO_ROWS_PER_DAY": "100",
    }


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _wait_for_ui(url: str, server: subprocess.Popen, log_dir: Path, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"start.sh exited with {server.returncode}: {_tail(log_dir)}"
        try:
            nodes = _graphql(url, REPOS)["repositoriesOrError"]["nodes"]
            if nodes:
                return nodes[0]
        except (requests.RequestException, KeyError, TypeError):
            pass
        time.sleep(1)
    raise AssertionError(f"UI not up at {url} after {timeout}s: {_tail(log_dir)}")


def _tail(log_dir: Path) -> str:
    parts = []
    for name in ("supervisor.log", "dagster.log"):
        path = log_dir / name
        if path.exists():
            parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(parts)


@pytest.mark.skipif(os.name == "nt", reason="README's shell commands are bash; on Windows the .bat files run under "
                    "tests/test_bat_files_any_folder.py and, on the PC, scripts\\windows_acceptance.bat")
def test_every_readme_shell_command_works_in_a_fresh_shell(tmp_path):
    commands, _ = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    port = free_port()
    env = _fresh_env(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    log_dir = REPO / "logs"
    server: subprocess.Popen | None = None
    demo_run_id = None
    try:
        for command in commands:
            if command.skipped_because:
                continue
            if command.text.startswith(SERVER_COMMAND):
                server = subprocess.Popen(
                    ["bash", "--noprofile", "--norc", "-c", command.text], cwd=REPO, env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
                repository = _wait_for_ui(url, server, log_dir)
                _the_demo_run_is_listed_under_its_job(url, repository, demo_run_id)
                continue
            done = subprocess.run(["bash", "--noprofile", "--norc", "-c", command.text], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, (
                f"README line {command.line}: {command.text}\nexit {done.returncode}\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
            if command.text.startswith("scripts/demo.sh"):
                demo_run_id = _check_demo_output(done.stdout + done.stderr, tmp_path)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # start.sh execs the supervisor: it stops its tree
            server.wait(timeout=120)
    assert demo_run_id is not None and server is not None
    assert server.returncode == 0
    # the CLI commands wrote where the README says
    exports = tmp_path / "data" / "exports"
    assert (exports / "sales_pack.hyper").is_file() and (exports / "uk_sales.hyper").is_file()
    assert (tmp_path / "user_home" / "extracts" / "orders_summary.hyper").is_file()


def _check_demo_output(output: str, tmp: Path) -> str:
    """Quiet and helpful: each line once, no warnings, the extracts, the executive rows, what next."""
    run_part = output[output.index("==> running the daily flow"):]
    lines = [line for line in run_part.splitlines() if line.strip()]
    repeated = sorted({line for line in lines if lines.count(line) > 1 and not set(line) <= set("─│┌┐└┘├┤┬┴┼ ")})
    assert repeated == [], repeated
    assert "Warning" not in run_part and "WARNING" not in run_part, run_part
    assert "daily_sales_flow_job: SUCCESS" in run_part
    assert str(tmp / "data" / "exports" / "executive_daily_sales.hyper") in run_part
    assert "qi_executive_daily_sales, newest 8 rows" in run_part
    next_part = run_part[run_part.index("Next:"):]
    for command in ("scripts/start.sh", ".venv/bin/python scripts/status.py", "duckdb_to_tableau_server.py --list"):
        assert command in next_part, next_part
    assert len(lines) < 80, f"{len(lines)} lines"
    match = re.search(r"^run ([0-9a-f-]{36}) of daily_sales_flow_job \(location (\S+)\)", run_part, re.M)
    assert match, run_part[:2000]
    return match.group(1)


def _the_demo_run_is_listed_under_its_job(url: str, repository: dict, run_id: str | None) -> None:
    assert run_id is not None, "the README starts the UI before running the demo"
    repo, location = repository["name"], repository["location"]["name"]
    assert location == "retail_sales"
    data = _graphql(url, JOB_RUNS, {"job": "daily_sales_flow_job", "repo": repo, "location": location,
                                    "label": f"{repo}@{location}"})
    # Jobs > daily_sales_flow_job > Runs and the Overview timeline filter runs by the job and this tag
    assert run_id in {r["runId"] for r in data["runsOrError"]["results"]}, json.dumps(data)[:2000]
    assert run_id in {r["runId"] for r in data["pipelineOrError"]["runs"]}
    origin = _graphql(url, RUN_ORIGIN, {"id": run_id})["runOrError"]
    assert origin == {"pipelineName": "daily_sales_flow_job",
                      "repositoryOrigin": {"repositoryName": repo, "repositoryLocationName": location}}
