"""Temporary and build files that carry their owner's process identity, so the next run can tidy a killed run's.

Every temporary name made here embeds the writing process's id and start time
(`.{stem}.{pid}-{start}.{random}.tmp`). A run removes its own temporary files on failure; a
run killed with `kill -9` (or a power cut) cannot, so the next run of the same script calls
`remove_stale` on its own folders: it deletes only names of its own pattern whose owner is no
longer alive. A PID reused by another program does not fool it, because the start time differs.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import psutil

# .{stem}.{pid}-{start}.{random}{suffix}: the owner's PID and its start time in centiseconds.
_OWNER_RE = re.compile(r"\.(?P<pid>\d+)-(?P<start>\d+)\.[0-9a-f]{12}(?:\.[A-Za-z]+)?$")


@lru_cache(maxsize=8)
def _token_of(pid: int) -> str:
    return f"{pid}-{_start_centis(pid)}"


def _own_token() -> str:
    # keyed by the pid asked for now: a forked child gets its own token, never its parent's cached one
    return _token_of(os.getpid())


if hasattr(os, "register_at_fork"):  # not on Windows, which spawns: a child starts with nothing cached
    # a forked child forgets its ancestors' tokens, so a pid reused along a chain of forks cannot bring one back
    os.register_at_fork(after_in_child=_token_of.cache_clear)


def _start_centis(pid: int) -> int:
    try:
        return int(psutil.Process(pid).create_time() * 100)
    except (psutil.Error, OSError):
        return 0


def owner_token() -> str:
    """`{pid}-{start}` of this process, as embedded in its temporary names."""
    return _own_token()


def temp_name(stem: str, suffix: str = ".tmp") -> str:
    """A hidden temporary name for `stem` that names this process as its owner."""
    return f".{stem}.{owner_token()}.{uuid.uuid4().hex[:12]}{suffix}"


def temp_path(target: Path, suffix: str = ".tmp") -> Path:
    """A temporary path beside `target` (same folder, so the final rename never crosses disks)."""
    return target.with_name(temp_name(target.name, suffix))


def owner_alive(name: str) -> bool:
    """Whether the process that made the temporary name `name` is still running (True if unknown)."""
    match = _OWNER_RE.search(name)
    if match is None:
        return True  # not one of ours: never touch it
    pid, start = int(match.group("pid")), int(match.group("start"))
    if pid == os.getpid():
        return start == _start_centis(pid) or start == 0
    try:
        process = psutil.Process(pid)
        actual = int(process.create_time() * 100)
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True  # cannot tell (e.g. access denied): leave it
    # Start times compared to 1 s: a PID reused by a later process is not the owner.
    return abs(actual - start) <= 100


def remove_stale(folder: Path, prefixes: Iterable[str]) -> list[Path]:
    """Delete the temporary files and build folders in `folder` whose names start with one of
    `prefixes` and whose owning process is gone; return what was removed.
    """
    prefixes = tuple(prefixes)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not entry.name.startswith(prefixes) or _OWNER_RE.search(entry.name) is None:
            continue
        if entry.name.endswith(".old"):
            continue  # an original moved aside by files.replace_together: files.recover_set puts it back
        if owner_alive(entry.name):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # still open somewhere (Windows): the next run tries again
        removed.append(path)
    return removed
