"""Fault injection for the file system: fail the n-th call that touches a folder, with any errno.

A script's own Python-level file-system calls (os.open, os.mkdir, os.replace, os.rename, os.unlink,
os.rmdir, os.write and os.ftruncate on a descriptor it opened there, the built-in open, which
pathlib, shutil and logging use) are counted when their path lies under `root`. A first run with
`fail_at=None` counts the fault points; then each point can be made to fail alone. What C code does
underneath (SQLite, DuckDB) is not seen here: the tmpfs tests fill a real disk for that.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

_PATH_CALLS = ("open", "mkdir", "replace", "rename", "unlink", "rmdir")


class FileSystemFaults:
    def __init__(self, root: Path, fail_at: int | None = None, number: int = 0, persist: bool = False):
        """`persist`: every call from the n-th on fails too (a folder that stays broken), not only the n-th."""
        self.root = str(Path(root).resolve())
        self.fail_at = fail_at
        self.persist = persist
        self.number = number
        self.points: list[tuple[str, str]] = []
        self._fds: set[int] = set()
        self.fired: tuple[str, str] | None = None

    def _under(self, path) -> bool:
        try:
            text = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a descriptor, not a path
            return False
        return text == self.root or text.startswith(self.root + os.sep)

    def _point(self, call: str, where: str) -> None:
        self.points.append((call, where))
        count = len(self.points)
        if self.fail_at is not None and (count == self.fail_at or (self.persist and count > self.fail_at)):
            self.fired = self.fired or (call, where)
            raise OSError(self.number, os.strerror(self.number), where)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FileSystemFaults:
        for name in _PATH_CALLS:
            original = getattr(os, name)

            def wrapper(path, *args, _original=original, _name=name, **kwargs):
                if self._under(path):
                    self._point(f"os.{_name}", os.fsdecode(path))
                result = _original(path, *args, **kwargs)
                if _name == "open" and self._under(path):
                    self._fds.add(result)
                return result

            monkeypatch.setattr(os, name, wrapper)
        for name in ("write", "ftruncate"):
            original = getattr(os, name)

            def fd_wrapper(fd, *args, _original=original, _name=name, **kwargs):
                if fd in self._fds:
                    self._point(f"os.{_name}", f"fd {fd}")
                return _original(fd, *args, **kwargs)

            monkeypatch.setattr(os, name, fd_wrapper)
        original_close = os.close

        def close(fd):
            self._fds.discard(fd)
            return original_close(fd)

        monkeypatch.setattr(os, "close", close)
        original_open = io.open

        def open_(file, *args, **kwargs):
            if not isinstance(file, int) and self._under(file):
                self._point("open", os.fsdecode(file))
            return original_open(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", open_)
        monkeypatch.setattr(builtins, "open", open_)
        # logging's FileHandler keeps its own reference to the built-in open
        monkeypatch.setattr(logging.FileHandler, "_builtin_open", staticmethod(open_), raising=False)
        return self


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real file system of `size` (a tmpfs) at `path`, unmounted afterwards. Needs root on Linux: skipped
    otherwise, with the reason."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs here, which needs root on Linux")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave_bytes: int = 0) -> Path:
    """Fill the disk until `leave_bytes` are free; returns the filler file (delete it to free the disk)."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))
    return filler
