"""scripts/windows_acceptance.py (windows_acceptance.bat): the checklist's steps that are not Windows-only
run here for real, against a real supervised `dagster dev`: the flow through the server, a dbt build
cancelled with the lock freed and the queue moving on, pause and resume; the Windows-only steps say
SKIPPED with why; one report file, written whole, says PASS or FAIL with what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_e2e_dagster_dev import Stack

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "windows_acceptance.py"
WINDOWS_ONLY = ["register", "wake", "kill_supervisor", "reboot_ready"]


def _acceptance(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1200,
                          cwd=REPO, env=env or dict(os.environ))


def _report(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.split(":", 1)[0].split()[-1]: line for line in lines if line[:8].strip() in ("PASS", "FAIL", "SKIPPED")}


@pytest.mark.skipif(os.name == "nt", reason="asserts that the Windows-only steps are skipped; on Windows they run "
                    "(scripts\\windows_acceptance.bat on the PC)")
def test_without_a_server_the_windows_steps_are_skipped_and_the_report_passes(tmp_path):
    (tmp_path / "reports").mkdir()
    report = tmp_path / "reports" / "report.txt"
    done = _acceptance("--steps", "setup", "locations", *WINDOWS_ONLY, "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    steps = _report(report)
    assert steps["setup"].startswith("PASS") and steps["locations"].startswith("PASS")
    for name in WINDOWS_ONLY:
        assert steps[name].startswith(f"SKIPPED  {name}: Windows only"), steps[name]
    assert report.read_text(encoding="utf-8").rstrip().splitlines()[-1].startswith("RESULT: PASS")
    assert [p.name for p in report.parent.iterdir()] == ["report.txt"]  # no temporary file left


def test_a_failing_step_fails_the_report_with_what_to_do(tmp_path):
    report = tmp_path / "report.txt"
    not_a_folder = tmp_path / "data-file"
    not_a_folder.write_text("a file where DATA_DIR should be")
    done = _acceptance("--steps", "setup", "--report", str(report), env={**os.environ, "DATA_DIR": str(not_a_folder)})
    assert done.returncode == 1
    steps = _report(report)
    assert steps["setup"].startswith("FAIL     setup: data_dir") and "| what to do:" in steps["setup"]
    assert report.read_text(encoding="utf-8").rstrip().splitlines()[-1] == (
        "RESULT: FAIL (0 of 1 steps passed or skipped; failed: setup)")


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_the_server_steps_pass_against_a_real_dagster_dev(isolated_env, tmp_path):
    """Heavy: run under `flock /tmp/heavy.lock`."""
    generated = subprocess.run([sys.executable, str(REPO / "scripts" / "generate_sample_data.py"), "--days", "5",
                                "--rows-per-day", "2000"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert generated.returncode == 0, generated.stderr
    stack = Stack(tmp_path, isolated_env)
    report = tmp_path / "report.txt"
    try:
        stack.wait_until_up()
        done = _acceptance("--steps", "start", "flow", "cancel", "pause_resume", "--url", stack.url,
                           "--port", str(stack.port), "--dagster-home", str(stack.home), "--report", str(report))
        steps = _report(report)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + stack.log_tail()
        assert steps["start"].startswith("PASS") and steps["flow"].startswith("PASS")
        assert steps["cancel"].startswith("PASS     cancel: lock free") and "the queued run started" in steps["cancel"]
        assert steps["pause_resume"].startswith("PASS     pause_resume: paused")
        assert stack.process.wait(timeout=60) == 0  # pause stopped the supervisor, in order
    finally:
        if stack.process.poll() is None:
            stack.stop()
