"""Replacing, deleting and appending to the pipeline's files when another program holds them open.

On Windows a file open in Excel or Tableau Desktop (opened without FILE_SHARE_DELETE) cannot be
replaced, renamed or deleted: `os.replace`/`os.remove` raise PermissionError (WinError 5 or 32)
until the program lets go. Every atomic replace and prune in the project goes through here, so
the behaviour is the same everywhere: retry briefly, then one clear error that names the file
and the program that most likely holds it (exit 75: closing it and retrying helps). Pruning is
best effort: a held old copy is left for the next prune and never fails the caller. A
PermissionError that is not a held file (POSIX permissions) is exit 74 with the free space.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pipeline_common.backoff import exponential_delay
from pipeline_common.leftovers import owner_alive, temp_name
from pipeline_common.script_support import EXIT_IO, ScriptError, TransientError, free_space_text

T = TypeVar("T")

HELD_RETRY_ENV_VAR = "PIPELINE_HELD_FILE_RETRY_SECONDS"
DEFAULT_HELD_RETRY_SECONDS = 10.0
PRUNE_RETRY_SECONDS = 1.0
_FIRST_PAUSE_S = 0.1
_MAX_PAUSE_S = 2.0

# Win32 errors a held file produces: ACCESS_DENIED (rename/replace over a file open without
# FILE_SHARE_DELETE, or a delete-pending file), SHARING_VIOLATION, LOCK_VIOLATION.
_HELD_WINERRORS = {5, 32, 33}

# Which program a user most likely has the file open in, by suffix.
_PROGRAMS = {
    ".csv": "Excel",
    ".xlsx": "Excel",
    ".xls": "Excel",
    ".hyper": "Tableau Desktop",
    ".tds": "Tableau Desktop",
    ".tdsx": "Tableau Desktop",
    ".duckdb": "a DuckDB client (DBeaver, the duckdb CLI, a notebook)",
    ".parquet": "a Parquet viewer, Power BI or a notebook",
    ".log": "a text editor or a log tail (Get-Content -Wait)",
    ".jsonl": "a text editor or a log tail (Get-Content -Wait)",
    ".json": "a text editor",
}

log = logging.getLogger("pipeline_common.files")


class FileHeldError(TransientError):
    """A file stayed held open by another program past the retry window (exit 75)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


class FileAccessError(ScriptError):
    """Permission denied or disk full on the pipeline's own files (exit 74)."""

    exit_code = EXIT_IO

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


# Device names Windows reserves in every folder, with or without an extension ("CON.hyper").
WINDOWS_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)]
)


def reserved_name_problem(name: str) -> str | None:
    """Why `name` cannot be a file name on Windows (a device name, a trailing dot/space), or None."""
    stem = name.split(".")[0].rstrip(" ").upper()
    if stem in WINDOWS_RESERVED_NAMES:
        return f"{stem} is a device name reserved by Windows and cannot be a file name; choose another name"
    if name.endswith((".", " ")):
        return "a file name cannot end with a dot or a space on Windows"
    return None


def held_retry_seconds() -> float:
    value = os.environ.get(HELD_RETRY_ENV_VAR, "").strip()
    try:
        return max(0.0, float(value)) if value else DEFAULT_HELD_RETRY_SECONDS
    except ValueError:
        return DEFAULT_HELD_RETRY_SECONDS


def likely_program(path: Path) -> str:
    """The kind of program a user has this file open in (by its suffix)."""
    return _PROGRAMS.get(Path(path).suffix.lower(), "another program")


def is_held(error: BaseException) -> bool:
    """A PermissionError that another program's open handle explains (Windows), not an ACL."""
    if not isinstance(error, PermissionError):
        return False
    return getattr(error, "winerror", None) in _HELD_WINERRORS


def holders(path: Path) -> list[str]:
    """Programs that have `path` open, as `EXCEL.EXE (PID 4242)`; empty when nobody can be named.

    Windows asks the Restart Manager (as DuckDB and Explorer do); elsewhere the processes of
    this user are scanned. Never raises: naming the holder is a courtesy, not a requirement.
    """
    try:
        if os.name == "nt":
            return _restart_manager_holders(Path(path))
        return _posix_holders(Path(path))
    except Exception:  # noqa: BLE001 - a diagnosis must never mask the real error
        return []


def _posix_holders(path: Path) -> list[str]:
    import psutil

    target = os.path.realpath(path)
    found = []
    me = os.getpid()
    for process in psutil.process_iter(["pid", "name"]):
        if process.info["pid"] == me:
            continue
        try:
            if any(f.path == target for f in process.open_files()):
                found.append(f"{process.info['name']} (PID {process.info['pid']})")
        except psutil.Error:
            continue
    return found


def _restart_manager_holders(path: Path) -> list[str]:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    class RM_UNIQUE_PROCESS(ctypes.Structure):  # noqa: N801 - Win32 name
        _fields_ = [("dwProcessId", wintypes.DWORD), ("ProcessStartTime", wintypes.FILETIME)]

    class RM_PROCESS_INFO(ctypes.Structure):  # noqa: N801 - Win32 name
        _fields_ = [
            ("Process", RM_UNIQUE_PROCESS),
            ("strAppName", wintypes.WCHAR * 256),
            ("strServiceShortName", wintypes.WCHAR * 64),
            ("ApplicationType", ctypes.c_int),
            ("AppStatus", wintypes.ULONG),
            ("TSSessionId", wintypes.DWORD),
            ("bRestartable", wintypes.BOOL),
        ]

    rm = ctypes.WinDLL("rstrtmgr")
    session = wintypes.DWORD()
    key = ctypes.create_unicode_buffer(33)
    if rm.RmStartSession(ctypes.byref(session), 0, key) != 0:
        return []
    try:
        resources = (wintypes.LPCWSTR * 1)(str(path))
        if rm.RmRegisterResources(session, 1, resources, 0, None, 0, None) != 0:
            return []
        needed, count, reason = wintypes.UINT(0), wintypes.UINT(0), wintypes.DWORD()
        status = rm.RmGetList(session, ctypes.byref(needed), ctypes.byref(count), None, ctypes.byref(reason))
        if status != 234 or needed.value == 0:  # ERROR_MORE_DATA: there are holders to fetch
            return []
        infos = (RM_PROCESS_INFO * needed.value)()
        count = wintypes.UINT(needed.value)
        if rm.RmGetList(session, ctypes.byref(needed), ctypes.byref(count), infos, ctypes.byref(reason)) != 0:
            return []
        return [f"{infos[i].strAppName} (PID {infos[i].Process.dwProcessId})" for i in range(count.value)]
    finally:
        rm.RmEndSession(session)


def held_message(path: Path, action: str, waited: float) -> str:
    names = holders(path)
    who = ", ".join(names) if names else f"another program (most likely {likely_program(path)})"
    return (
        f"cannot {action} {path}: it is open in {who}; close it there and run again "
        f"(retried for {waited:.1f} s)"
    )


def access_error(path: Path, action: str, error: OSError) -> FileAccessError:
    reason = "disk full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return FileAccessError(f"cannot {action} {path}: {reason} ({free_space_text(path)})", Path(path))


def retry_held(
    operation: Callable[[], T],
    path: Path,
    action: str,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`; while it fails with PermissionError, retry with backoff up to `timeout` s.

    Afterwards a held file (Windows) is FileHeldError (exit 75) naming the file and the program;
    any other PermissionError or a full disk is FileAccessError (exit 74) with the free space.
    """
    timeout = held_retry_seconds() if timeout is None else timeout
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return operation()
        except PermissionError as exc:
            waited = time.monotonic() - started
            if waited >= timeout:
                if is_held(exc):
                    raise FileHeldError(held_message(path, action, waited), Path(path)) from None
                raise access_error(path, action, exc) from None
            sleep(min(exponential_delay(attempt, _FIRST_PAUSE_S, _MAX_PAUSE_S), max(timeout - waited, 0.0)))
            attempt += 1
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise access_error(path, action, exc) from None
            raise


def replace(source: Path, target: Path, timeout: float | None = None) -> None:
    """`os.replace(source, target)`, patient with a target another program holds open."""
    retry_held(lambda: os.replace(source, target), Path(target), "replace", timeout)


def remove(path: Path, timeout: float | None = None) -> bool:
    """Delete `path` (missing is fine); False when it did not exist. Raises FileHeldError when held."""

    def _unlink() -> bool:
        try:
            os.remove(path)
        except FileNotFoundError:
            return False
        return True

    return retry_held(_unlink, Path(path), "delete", timeout)


def prune(paths: Iterable[Path], logger: logging.Logger | Any | None = None,
          timeout: float = PRUNE_RETRY_SECONDS) -> tuple[list[Path], list[Path]]:
    """Delete each path, best effort: (deleted, left because another program holds them).

    A held or undeletable old copy is logged and left for the next prune; it never fails the
    caller (pruning backups must not stop an extract from being published).
    """
    logger = logger or log
    deleted: list[Path] = []
    kept: list[Path] = []
    for path in paths:
        try:
            if remove(path, timeout):
                deleted.append(path)
        except (FileHeldError, FileAccessError) as exc:
            logger.warning(f"{exc}; left for the next prune")
            kept.append(path)
    return deleted, kept


def temp_path(target: Path, suffix: str = "tmp") -> Path:
    """A hidden sibling of `target` (same folder, so the final rename never crosses file systems).

    The name carries this process's id and start time (pipeline_common.leftovers), so the next
    run can tell a killed run's temporary file from a live one's and remove only the former.
    """
    return target.with_name(temp_name(target.name, f".{suffix}"))


def leftovers(target: Path, suffix: str = "tmp") -> list[Path]:
    """Temporary siblings of `target` a killed run may have left (see temp_path)."""
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return []
    return [p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(f".{suffix}")]


@contextlib.contextmanager
def atomic_write(target: Path, fsync: bool = True, timeout: float | None = None,
                 suffix: str = "tmp") -> Iterator[Path]:
    """Yield a temporary path beside `target`; when the block succeeds, move it over `target`.

    The temporary file is removed whatever happens, so a failure leaves the old target as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target, suffix)
    try:
        yield tmp
        if fsync:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        replace(tmp, target, timeout)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def recover_set(targets: Sequence[Path]) -> None:
    """Undo what a run killed inside replace_together left: put a moved-aside original back."""
    for target in targets:
        for aside in sorted(leftovers(target, "old")):
            if owner_alive(aside.name):
                continue  # a live run is mid-swap (or the name is not ours): leave it alone
            try:
                if target.exists():
                    aside.unlink()
                else:
                    os.replace(aside, target)
            except OSError as exc:
                log.warning(f"could not clean up {aside}: {exc}")


def replace_together(pairs: Sequence[tuple[Path, Path]], timeout: float | None = None) -> None:
    """Move each (temporary, target) into place, all or none: readers see the whole old set or the new.

    First every existing target is moved aside (this is where a file open in Excel fails, and
    then the ones already moved are put back), then the new files are moved in, then the old
    ones are deleted. A failure at any step restores the old set.
    """
    aside: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for _, target in pairs:
            if target.exists():
                old = temp_path(target, "old")
                retry_held(lambda t=target, o=old: os.replace(t, o), target, "replace", timeout)
                aside.append((old, target))
        for tmp, target in pairs:
            replace(tmp, target, timeout)
            placed.append(target)
    except BaseException:
        for target in placed:
            with contextlib.suppress(OSError):
                os.remove(target)
        for old, target in aside:
            try:
                os.replace(old, target)
            except OSError as exc:  # pragma: no cover - the original was just moved by us
                log.error(f"could not put {target} back from {old}: {exc}")
        raise
    prune([old for old, _ in aside], timeout=PRUNE_RETRY_SECONDS)


class _AppendLock:
    """An exclusive lock around one append (fcntl on POSIX, a byte-range lock far past EOF on Windows)."""

    _WINDOWS_OFFSET = 1 << 40  # nobody writes there, so the mandatory range lock blocks no reader

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> None:
        if os.name == "nt":  # pragma: no cover - Windows only
            import msvcrt

            os.lseek(self.fd, self._WINDOWS_OFFSET, os.SEEK_SET)
            msvcrt.locking(self.fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then OSError
        else:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        if os.name == "nt":  # pragma: no cover - Windows only
            import msvcrt

            os.lseek(self.fd, self._WINDOWS_OFFSET, os.SEEK_SET)
            msvcrt.locking(self.fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)


def append_line(path: Path, line: str) -> None:
    """Append one line (UTF-8) so that concurrent appenders from several processes never interleave.

    The line goes out in one write while an exclusive lock on the file is held: Windows' C runtime
    emulates O_APPEND with a seek then a write, which two processes can race.
    """
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
    fd = retry_held(lambda: os.open(path, flags, 0o644), path, "append to")
    try:
        with _AppendLock(fd):
            os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    finally:
        os.close(fd)


class PatientRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that survives a log someone is reading (Windows: a tail, an editor).

    Rotating renames the file; while another program holds it open without delete sharing the
    rename fails. The stock handler then prints a traceback on every later record and the file
    is left closed. This one keeps writing to the current file and tries rotating again after
    ROTATE_RETRY_SECONDS, writing one line into the log to say why it grows past its size.
    """

    ROTATE_RETRY_SECONDS = 60.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._next_rotate_attempt = 0.0

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - logging's name
        if time.monotonic() < self._next_rotate_attempt:
            return False
        return bool(super().shouldRollover(record))

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        try:
            super().doRollover()
        except PermissionError as exc:
            self._next_rotate_attempt = time.monotonic() + self.ROTATE_RETRY_SECONDS
            if self.stream is None or self.stream.closed:
                self.stream = self._open()
            self.stream.write(
                f"(log rotation postponed {self.ROTATE_RETRY_SECONDS:.0f} s: {self.baseFilename} is open in "
                f"another program ({exc.strerror or exc}); close it to let the log rotate)\n"
            )
            self.stream.flush()
