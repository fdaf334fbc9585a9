"""Start dbt and the legacy scripts so that cancelling a run stops them, on Windows as on Linux.

Dagster stops a run worker by interrupting its main thread. On Windows that is
`_thread.interrupt_main()`, a flag checked between Python bytecodes: it cannot break a blocking
`Popen.wait()` or a read on dbt's output pipe, and the `send_signal(SIGINT)` dagster-dbt and
`PipesSubprocessClient` then try raises `ValueError: Unsupported signal: 2`. dbt kept running and
kept the DuckDB write lock. So every child is started here in its own process group, waited for in
short slices (the interrupt lands within one slice), and on interrupt asked to stop (Windows:
CTRL_BREAK_EVENT to its group; POSIX: SIGINT to its group), then ended with its whole tree after a
grace period.

The platform calls sit behind one small seam (`Platform`): the same code path runs on Linux,
where the tests cancel a real dbt build through a real `dagster dev`.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import psutil

WAIT_SLICE_S = 0.25
"""Longest uninterruptible wait: the run worker's interrupt is handled within this."""

GRACE_S = 10.0
"""How long a child may take to stop after the polite request before its tree is ended."""


@dataclass(frozen=True)
class Platform:
    """The only operating-system-specific calls of this module."""

    name: str
    popen_options: Callable[[], dict[str, Any]]
    """Popen keywords that give the child a process group of its own."""
    ask_to_stop: Callable[[subprocess.Popen], None]
    """The polite stop request to the child's process group (may raise OSError)."""


def _windows_options() -> dict[str, Any]:  # pragma: no cover - Windows only
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}


def _windows_ask(process: subprocess.Popen) -> None:  # pragma: no cover - Windows only
    # A new process group ignores Ctrl+C; Ctrl+Break reaches every process of the group (dbt.exe's
    # launcher and the python.exe it starts), and Python's default handler for it exits.
    process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]


def _posix_options() -> dict[str, Any]:
    return {"start_new_session": True}


def _posix_ask(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)


WINDOWS = Platform("windows", _windows_options, _windows_ask)
POSIX = Platform("posix", _posix_options, _posix_ask)
PLATFORM = WINDOWS if os.name == "nt" else POSIX


def popen(args: Sequence[str], platform: Platform | None = None, **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen, the child in a process group of its own."""
    options = (platform or PLATFORM).popen_options()
    # Flags are OR-ed, never replaced: the process group (here) and the priority class (resource limits) both hold.
    flags = options.get("creationflags", 0) | kwargs.pop("creationflags", 0)
    if flags:
        options["creationflags"] = flags
    return subprocess.Popen(list(args), **{**options, **kwargs})


def wait(process: subprocess.Popen, slice_s: float = WAIT_SLICE_S) -> int:
    """process.wait(), in slices short enough for an interrupt of the main thread to land."""
    while True:
        try:
            return process.wait(timeout=slice_s)
        except subprocess.TimeoutExpired:
            continue


def lines(stream: IO[bytes], slice_s: float = WAIT_SLICE_S) -> Iterator[bytes]:
    """The lines of a child's output pipe, read by a helper thread so the caller never blocks
    longer than one slice (a blocking read cannot be interrupted on Windows)."""
    buffer: queue.Queue[bytes | None] = queue.Queue()

    def _pump() -> None:
        try:
            for line in iter(stream.readline, b""):
                buffer.put(line)
        except (OSError, ValueError):  # the pipe was closed under us: the child is being stopped
            pass
        finally:
            buffer.put(None)

    threading.Thread(target=_pump, name="child-output", daemon=True).start()
    while True:
        try:
            line = buffer.get(timeout=slice_s)
        except queue.Empty:
            continue
        if line is None:
            return
        yield line


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def stop(process: subprocess.Popen, grace_s: float = GRACE_S, platform: Platform | None = None,
         log: Callable[[str], None] | None = None) -> int | None:
    """Ask the child's group to stop, wait up to grace_s, then end every process left in its tree.

    Returns the child's exit code (None if it could not be reaped). Never raises: it runs while
    an interrupt is already on its way up.
    """
    say = log or (lambda _message: None)
    if process.poll() is not None:
        _end(_tree(process.pid))  # the child is gone; a grandchild may not be
        return process.returncode
    members = _tree(process.pid)  # taken now: once the child exits, its children are orphans
    try:
        (platform or PLATFORM).ask_to_stop(process)
        say(f"asked process {process.pid} and its group to stop; waiting up to {grace_s:.0f} s")
    except (OSError, ValueError) as exc:  # no console to send Ctrl+Break to, or already gone
        say(f"could not ask process {process.pid} to stop ({exc}); ending its process tree")
        grace_s = 0.0
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(min(WAIT_SLICE_S, max(0.0, deadline - time.monotonic())))
    members += [p for p in _tree(process.pid) if p not in members]
    left = [p for p in members if _running(p)]
    if left:
        say(f"ending {len(left)} process(es) left of {process.pid}'s tree: {[p.pid for p in left]}")
        _end(left)
    try:
        return process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end(processes: list[psutil.Process]) -> None:
    for member in processes:
        try:
            member.kill()  # TerminateProcess on Windows, SIGKILL elsewhere
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=5)
