"""start_dagster.bat and the Task Scheduler scripts: CRLF, and everything they name exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*REPO.glob("*.bat"), *(REPO / "scripts").glob("*.bat"), *(REPO / "scripts").glob("*.ps1")])


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_crlf_line_endings_only(path):
    data = path.read_bytes()
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n"), f"{path.name} has bare LF line endings"


@pytest.mark.parametrize("path", [p for p in SCRIPTS if p.suffix == ".bat"], ids=lambda p: p.name)
def test_every_python_script_a_bat_names_exists(path):
    """How each .bat parses and runs is tests/test_bat_files_any_folder.py; here: what it names exists."""
    named = re.findall(r"(scripts\\[\w\\]+\.(?:py|bat))", path.read_text())
    for script in named:
        assert (REPO / Path(*script.split("\\"))).is_file(), f"{path.name} names {script}"


def test_supervisor_it_calls_accepts_the_documented_arguments():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "supervisor.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--host", "--dagster-home", "--max-restarts", "--log-dir"):
        assert flag in result.stdout


def test_unregister_removes_the_same_task_name():
    register = (REPO / "scripts" / "register_task.ps1").read_text()
    unregister = (REPO / "scripts" / "unregister_task.ps1").read_text()
    name = re.search(r'\$TaskName = "([^"]+)"', register).group(1)
    assert f'$TaskName = "{name}"' in unregister
    assert '@($TaskName, "$TaskName-Wake")' in unregister  # the server task and its wake task
    assert "Unregister-ScheduledTask -TaskName $Name" in unregister


def test_python_modules_the_supervisor_starts_exist():
    import importlib.util

    text = (REPO / "scripts" / "supervisor.py").read_text()
    for module in re.findall(r'"-m", "([a-z_.]+)"', text) + re.findall(r'CODE_LOCATION_MODULE = "([a-z_.]+)"', text):
        assert importlib.util.find_spec(module) is not None, module
