"""orchestration.child_process: waits an interrupt can break, and a stop that ends the whole tree.

The interrupt is delivered the way Dagster delivers it to a run worker on Windows,
`_thread.interrupt_main()` (a flag, not a signal), which runs the same on Linux: a plain
`Popen.wait()` does not notice it until the child ends; the launcher's waits do within a slice.
"""

from __future__ import annotations

import _thread
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from orchestration import child_process

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """The interrupt lands as in a run worker: on Python's own SIGINT handler (a test process may have been left
    another one, or an ignored SIGINT that children inherit)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_main_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_a_plain_wait_does_not_notice_interrupt_main_until_the_child_ends():
    """Why the launcher exists: the old code's wait, interrupted the Windows way."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    started = time.monotonic()
    _interrupt_main_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        child.wait()
        time.sleep(5)  # the interrupt lands here, after the wait, never inside it
    assert time.monotonic() - started >= 2.5


def test_wait_in_slices_is_interrupted_within_a_slice():
    child = child_process.popen(SLEEPER)
    try:
        started = time.monotonic()
        _interrupt_main_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            child_process.wait(child)
        assert time.monotonic() - started < 0.3 + 1.0
    finally:
        child_process.stop(child, grace_s=0)


def test_reading_a_silent_childs_output_is_interrupted_within_a_slice():
    child = child_process.popen(SLEEPER, stdout=subprocess.PIPE)
    try:
        started = time.monotonic()
        _interrupt_main_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            list(child_process.lines(child.stdout))
        assert time.monotonic() - started < 0.3 + 1.0
    finally:
        child_process.stop(child, grace_s=0)


def test_lines_yields_every_line_then_ends():
    child = child_process.popen([sys.executable, "-c", "print('a'); print('b', flush=True)"], stdout=subprocess.PIPE)
    assert [line.strip() for line in child_process.lines(child.stdout)] == [b"a", b"b"]
    assert child_process.wait(child) == 0


def test_wait_returns_the_exit_code():
    assert child_process.wait(child_process.popen([sys.executable, "-c", "raise SystemExit(75)"])) == 75


POLITE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    try:
        print('ready', flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        Path(sys.argv[1]).write_text('cleaned up')
        raise SystemExit(130)
""")

STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, '-c',
        'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'])
    print(grandchild.pid, flush=True)
    time.sleep(60)
""")


def test_a_child_that_listens_stops_politely_within_the_grace(tmp_path: Path):
    marker = tmp_path / "marker"
    child = child_process.popen([sys.executable, "-c", POLITE, str(marker)], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    code = child_process.stop(child, grace_s=10)
    assert time.monotonic() - started < 5
    assert code == 130
    assert marker.read_text() == "cleaned up"


def test_a_child_that_ignores_the_request_is_ended_with_its_grandchild_after_the_grace():
    child = child_process.popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    grandchild = psutil.Process(int(child.stdout.readline()))
    started = time.monotonic()
    child_process.stop(child, grace_s=1.0)
    took = time.monotonic() - started
    assert 1.0 <= took < 8
    assert child.poll() is not None
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE


def test_when_the_polite_request_cannot_be_sent_the_tree_is_ended_at_once():
    """Windows without a console to send Ctrl+Break to: GenerateConsoleCtrlEvent fails with OSError."""

    def refuse(_process: subprocess.Popen) -> None:
        raise OSError(6, "The handle is invalid")

    no_console = child_process.Platform("no-console", child_process.POSIX.popen_options, refuse)
    child = child_process.popen(SLEEPER, platform=no_console)
    messages: list[str] = []
    started = time.monotonic()
    child_process.stop(child, grace_s=30, platform=no_console, log=messages.append)
    assert time.monotonic() - started < 6
    assert child.poll() is not None
    assert "could not ask" in messages[0] and "The handle is invalid" in messages[0]


def test_the_child_has_a_process_group_of_its_own():
    """The polite request goes to the child's group, never to the run worker's own group."""
    import os

    if os.name == "nt":  # pragma: no cover - the Windows twin: CREATE_NEW_PROCESS_GROUP in the flags
        assert child_process.PLATFORM.popen_options()["creationflags"] & subprocess.CREATE_NEW_PROCESS_GROUP
        return
    child = child_process.popen(SLEEPER)
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    finally:
        child_process.stop(child, grace_s=0)
