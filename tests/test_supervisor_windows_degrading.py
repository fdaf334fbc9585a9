"""scripts/supervisor.py's Windows fixes that can be exercised here: a stop requested during the
restart backoff is honoured within a slice even when it arrives the Windows way (the handler runs
only between bytecodes, `_thread.interrupt_main()`), and children get no console window when the
supervisor has none (the Interactive task runs pythonw.exe)."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def supervisor():
    from scripts import supervisor as module

    return module


@pytest.fixture
def stop_on_sigint():
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # what install_stop_handlers does
    yield stop
    signal.signal(signal.SIGINT, previous)


def test_a_plain_event_wait_hears_interrupt_main_only_when_it_ends(stop_on_sigint):
    """Why the backoff waits in slices: the old `stop_requested.wait(delay)`, interrupted the Windows way."""
    threading.Timer(0.2, _thread.interrupt_main).start()
    started = time.monotonic()
    stop_on_sigint.wait(2.0)
    assert time.monotonic() - started >= 1.9
    time.sleep(0.05)  # the handler runs after the wait
    assert stop_on_sigint.is_set()


def test_ctrl_c_during_a_long_backoff_stops_within_a_slice(supervisor, stop_on_sigint):
    threading.Timer(0.2, _thread.interrupt_main).start()
    started = time.monotonic()
    assert supervisor.wait_or_stop(stop_on_sigint, 300) is True
    assert time.monotonic() - started < 0.2 + 2 * supervisor.WAIT_SLICE_S


def test_the_backoff_lasts_its_full_delay_without_a_stop(supervisor):
    started = time.monotonic()
    assert supervisor.wait_or_stop(threading.Event(), 1.2) is False
    assert 1.2 <= time.monotonic() - started < 2.5


@pytest.mark.parametrize(("has_console", "window"), [(True, True), (False, False)])
def test_children_get_no_window_when_the_supervisor_has_no_console(supervisor, has_console, window):
    flags = supervisor.child_creation_flags(True, has_console)
    assert flags & 0x00000200  # CREATE_NEW_PROCESS_GROUP: Ctrl+Break reaches dagster dev's group only
    assert bool(flags & 0x08000000) is not window  # CREATE_NO_WINDOW
    assert supervisor.child_creation_flags(False, has_console) == 0


@pytest.mark.skipif(os.name != "nt", reason="Windows only: Job objects (the structure layout is tested in "
                    "tests/test_supervisor.py; the self-assignment runs in scripts\\windows_acceptance.bat, step kill_supervisor)")
def test_the_supervisor_is_in_its_kill_on_close_job_from_the_start():  # pragma: no cover - Windows
    import subprocess

    # In a child process: the kill-on-close job ends whatever is in it when its handle closes.
    code = "from scripts import supervisor as m; job = m.create_job(); print(job is not None and job.holds_supervisor)"
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr
