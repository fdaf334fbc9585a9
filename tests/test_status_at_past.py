"""`status.py --at` in the past says what it evaluates: the files present now, judged at that time
(issue 26, item 6). Class: any time before now carries the note (text and --json); now or later does not."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[1]
LONDON = ZoneInfo("Europe/London")


def _status_cli(tmp_path: Path, at: dt.datetime, *args: str) -> subprocess.CompletedProcess:
    """status.py in a fresh interpreter, as a person runs it."""
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "status.py"), "--dagster-home", str(tmp_path / "home"),
         "--at", f"{at:%Y-%m-%dT%H:%M}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=180, encoding="utf-8",
    )


@pytest.fixture
def _status(monkeypatch: pytest.MonkeyPatch):
    """status.py's main in this process (tests/plugins/in_process.py), from the repo root as the CLI runs;
    the DAGSTER_HOME it sets is put back after the test."""
    from scripts import status

    from tests.plugins.in_process import run_main

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DAGSTER_HOME", "")  # main sets it to --dagster-home: monkeypatch restores it after

    def run(tmp_path: Path, at: dt.datetime, *args: str):
        return run_main(status.main, ["--dagster-home", str(tmp_path / "home"), "--at", f"{at:%Y-%m-%dT%H:%M}", *args])

    return run


@pytest.mark.parametrize("days_ago", [1, 30, 400])
def test_a_past_time_is_said_to_be_judged_on_the_files_present_now(tmp_path, days_ago, _status):
    at = dt.datetime.now(LONDON) - dt.timedelta(days=days_ago)
    if days_ago == 1:  # one through the real command line: its stdout, text and --json
        _status = _status_cli
    text = _status(tmp_path, at)
    assert text.returncode in (0, 1), text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(("CURRENT", "NOT CURRENT"))  # the contract's first line is unchanged
    assert any("evaluated against the files present now" in line for line in lines), text.stdout
    document = json.loads(_status(tmp_path, at, "--json").stdout)
    assert "files present now" in document["note"]


def test_now_or_later_has_no_such_note(tmp_path, _status):
    later = dt.datetime.now(LONDON) + dt.timedelta(hours=2)
    text = _status(tmp_path, later)
    assert "files present now" not in text.stdout
    assert "note" not in json.loads(_status(tmp_path, later, "--json").stdout)
