"""A cross-process, cross-platform exclusive lock file: one Tableau session at a time per PAT.

The lock file is created with O_EXCL and holds the owner's PID and process start time, so a
lock left behind by a crashed process is recognised (PID gone, or reused by another process)
and taken over instead of blocking every later export.

Windows: a lock file that its owner has just deleted while someone (an antivirus scan, a backup
agent) still has it open stays "delete pending": creating or deleting it raises PermissionError
until the last handle closes. Both count as "held, try again shortly", never as a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from pipeline_common.backoff import jittered_wait
from pipeline_common.files import FileHeldError, FileAccessError, remove
from pipeline_common.script_support import TransientError


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _owner_alive(lock_path: Path) -> bool:
    try:
        pid_text, _, started_text = lock_path.read_text(encoding="ascii").strip().partition(" ")
        pid, started = int(pid_text), float(started_text)
    except (OSError, ValueError):
        # Unreadable: the owner may be between create and write; treat as alive this round.
        return True
    actual = _process_start(pid)
    return actual is not None and abs(actual - started) < 1.0


def _try_create(lock_path: Path) -> bool | None:
    """True: created (ours). False: exists. None: PermissionError (Windows: the old one is delete pending)."""
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    except PermissionError:
        return None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()} {_process_start(os.getpid()) or 0.0}")
    return True


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, timeout_seconds: float, log: logging.Logger) -> Iterator[None]:
    """Hold lock_path for the duration of the block; wait (with backoff) while a live process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_seconds
    attempt = 0
    denied = False
    while not (created := _try_create(lock_path)):
        denied = denied or created is None
        if not _owner_alive(lock_path):
            log.warning(f"removing stale Tableau session lock {lock_path} (its process is gone)")
            try:
                lock_path.unlink()
                continue
            except FileNotFoundError:
                continue
            except PermissionError:
                denied = True  # delete pending or held by a scanner: wait like for a live owner
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if denied:
                raise TransientError(
                    f"the Tableau session lock {lock_path} could not be created or removed for {timeout_seconds:.0f} s "
                    f"(permission denied: a deleted lock another program still has open, or no write "
                    f"access to {lock_path.parent}); a retry later may succeed"
                )
            raise TransientError(
                f"another process holds the Tableau session (a publish, or the deadline sensor's warnings; lock "
                f"{lock_path} held for over "
                f"{timeout_seconds:.0f} s); a retry later may succeed"
            )
        log.info("another process holds the Tableau session (a publish or the warnings); waiting for its lock")
        time.sleep(jittered_wait(attempt, 0.25, 10.0, remaining))
        attempt += 1
    try:
        yield
    finally:
        try:
            remove(lock_path)
        except (FileHeldError, FileAccessError) as exc:
            # Our PID goes with us, so the next export sees a stale lock and takes it over.
            log.warning(f"could not delete the Tableau session lock: {exc}")
