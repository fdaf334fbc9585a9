"""Stopping the supervisor from outside ends its whole tree; children speak UTF-8 whatever the console.

The supervisor is run for real with `dagster dev` swapped for a small process tree (a parent,
a child that ignores SIGTERM and one that does not), so the tests take seconds, not minutes.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from scripts import supervisor

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals; Windows uses the Job object")

TREE = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    stubborn = "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(600)"
    subprocess.Popen([sys.executable, "-c", stubborn])
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("tree up: caf\\u00e9 \\u6771\\u4eac \\u2502\\u2500\\u2524", flush=True)
    time.sleep(600)
    """
)

# Runs the real supervisor.main with dagster dev replaced by TREE and no run recovery.
HARNESS = textwrap.dedent(
    """
    import sys
    from scripts import supervisor
    supervisor.dagster_command = lambda *args: [sys.executable, "-c", sys.argv[1]]
    supervisor.recover_interrupted_runs = lambda home: None
    supervisor.GRACEFUL_STOP_S = 2.0
    supervisor.KILL_WAIT_S = 3.0
    sys.exit(supervisor.main(sys.argv[2:]))
    """
)


def start_supervisor(tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, TREE,
         "--dagster-home", str(tmp_path / "home"), "--log-dir", str(tmp_path / "logs"), "--port", "1"],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for_tree(sup: subprocess.Popen, size: int = 3, timeout: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            family = psutil.Process(sup.pid).children(recursive=True)
        except psutil.Error:
            family = []
        if len(family) >= size:
            return family
        time.sleep(0.2)
    raise AssertionError(f"the tree under the supervisor never reached {size} processes")


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def wait_recorded(home: Path, size: int, timeout: float = 15) -> None:
    path = home / "supervisor.tree.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(json.loads(path.read_text())["processes"]) >= size:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError("the supervisor never recorded its tree")


def test_sigterm_to_the_supervisor_ends_every_process_below_it(tmp_path):
    sup = start_supervisor(tmp_path)
    try:
        family = wait_for_tree(sup)
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
        assert alive(family) == []
    finally:
        sup.kill()


def test_a_killed_supervisor_leaves_nothing_running_once_it_is_started_again(tmp_path):
    """Task Scheduler's End kills without warning; the next start must clear what is left."""
    first = start_supervisor(tmp_path)
    second = None
    family: list[psutil.Process] = []
    try:
        family = wait_for_tree(first)
        wait_recorded(tmp_path / "home", 3)
        first.kill()  # no handler runs: like TerminateProcess
        first.wait(timeout=30)
        time.sleep(1.0)
        # The stubborn child ignores the SIGTERM its parent's death caused: an orphan, as on Windows.
        assert alive(family), "expected an orphan to survive the kill"
        second = start_supervisor(tmp_path)
        new_family = wait_for_tree(second)
        assert alive(family) == []  # ended before the new dagster dev started
        log = (tmp_path / "logs" / "supervisor.log").read_text(encoding="utf-8")
        assert "left running by a supervisor that was killed" in log
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        assert alive(new_family) == []
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
        for orphan in alive(family):
            orphan.kill()


def test_children_run_in_utf8_mode_even_under_a_cp1252_console(tmp_path):
    sup = start_supervisor(tmp_path, env={"PYTHONIOENCODING": "cp1252"})
    try:
        wait_for_tree(sup)
        deadline = time.monotonic() + 20
        text = ""
        while time.monotonic() < deadline and "tree up" not in text:
            time.sleep(0.2)
            path = tmp_path / "logs" / "dagster.log"
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        assert "tree up: café 東京 │─┤" in text
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=60)


def test_child_environment_forces_utf8_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")
    env = supervisor.child_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.flags.utf8_mode, sys.stdout.encoding)"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.split() == ["1", "utf-8"]


def test_the_job_object_limit_structure_has_the_windows_layout():
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION is 144 bytes on 64-bit Windows, KILL_ON_JOB_CLOSE 0x2000
    (winnt.h); SetInformationJobObject rejects any other size."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("the 144-byte layout is the 64-bit one")
    assert ctypes.sizeof(supervisor.JobExtendedLimit) == 144
    assert supervisor.JobExtendedLimit.BasicLimitInformation.offset == 0
    assert supervisor._BasicLimit.LimitFlags.offset == 16
    assert supervisor.JobExtendedLimit.IoInfo.offset == 64
    assert supervisor.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE == 0x2000
