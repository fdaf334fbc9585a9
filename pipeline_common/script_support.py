"""What every legacy script shares: exit codes, logging, the JSON summary line, and Pipes.

A script runs the same by hand and under Dagster. When Dagster launched it through Pipes
(`DAGSTER_PIPES_CONTEXT` is set) its log lines and metadata also travel to the run; by hand
they only go to stderr/stdout. The exit code tells the orchestrator whether a retry can help.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import errno
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from pipeline_common.secrets import ScrubbingFilter, install_excepthook, scrub, scrub_data

# sysexits-style codes, shared with orchestration/pipes.py which maps them to retry or not.
EXIT_OK = 0
EXIT_BAD_DATA = 65  # EX_DATAERR: the input is wrong; retrying cannot help
EXIT_IO = 74  # EX_IOERR: disk full, permission denied on the pipeline's own files; an operator must act
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: network, throttling, a lock; a retry may succeed
EXIT_CONFIG = 78  # EX_CONFIG: configuration or arguments are wrong

# When set (by the Dagster wrapper), a failing script writes its error text here so the
# run's failure message can quote it.
ERROR_FILE_ENV_VAR = "PIPELINE_ERROR_FILE"

PIPES_ENV_VAR = "DAGSTER_PIPES_CONTEXT"

# Python's UTF-8 mode for every child process: on Windows a child would otherwise write the ANSI
# code page (cp1252), which its parent reads back as UTF-8 (and cannot print 東京 at all).
UTF8_CHILD_ENV = {"PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}


def tolerate_console_encoding() -> None:
    """Never die printing: a character the console's code page lacks becomes '?' (cp1252, a pipe)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


class ScriptError(Exception):
    """A failure with a message meant for a person and an exit code meant for a machine."""

    exit_code = EXIT_BAD_DATA

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadDataError(ScriptError):
    exit_code = EXIT_BAD_DATA


class TransientError(ScriptError):
    exit_code = EXIT_TRANSIENT


class ConfigurationError(ScriptError):
    exit_code = EXIT_CONFIG


class PipelineIOError(ScriptError):
    """Reading or writing the pipeline's own files failed (disk full, permission denied, ...)."""

    exit_code = EXIT_IO


def iso_date(text: str) -> "dt.date":
    """argparse `type=` for a YYYY-MM-DD date: a bad one is a usage error (exit 78) quoting it."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def free_space_text(path: Path | str) -> str:
    """`12.3 MB free on /data` for the disk holding `path` (its nearest existing folder)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    return f"{free / 1e6:,.1f} MB free on {probe}"


FILE_SYSTEM_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "EFBIG", "EMFILE")
    if hasattr(errno, name)
)
"""OSErrors that are about the pipeline's own files (exit 74); other OSErrors are not foreseen."""

# How the OS and the libraries say "disk full": errno 28, its Windows text, DuckDB, and Hyper (which reports
# a full disk only as "growing the database file failed", when creating the file or writing a data block).
DISK_FULL_MARKERS = ("No space left on device", '"errno":"28"', "There is not enough space on the disk", "disk full",
                     "growing the database file failed")


def disk_full_error(path: Path | str, exc: BaseException, action: str = "writing") -> PipelineIOError | None:
    """A PipelineIOError when a library's error (DuckDB, Hyper) says the disk is full, else None."""
    text = str(exc)
    if not any(marker.lower() in text.lower() for marker in DISK_FULL_MARKERS):
        return None
    return PipelineIOError(
        f"{action} {path}: No space left on device ({free_space_text(path)}); free some space on that disk, then re-run"
    )


def io_error(path: Path | str | None, exc: OSError, action: str = "writing") -> PipelineIOError:
    """A PipelineIOError naming the path, the reason and the free space on its disk."""
    path = path or exc.filename or "?"
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some space on that disk, then re-run",
        errno.EDQUOT: "free some space (disk quota), then re-run",
        errno.EACCES: "give the pipeline's account write access to that folder, then re-run",
        errno.EPERM: "give the pipeline's account write access to that folder, then re-run",
        errno.EROFS: "the disk is read-only; point DATA_DIR at a writable disk",
    }.get(exc.errno or 0, "check the disk and the folder's permissions, then re-run")
    return PipelineIOError(f"{action} {path}: {reason} ({free_space_text(path)}); {hint}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but wrong arguments are a configuration error (exit 78, contract section 8), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


_PIPES_LOCK = threading.RLock()
"""Pipes appends each message to one file with no lock of its own: a script syncing several datasets
in threads (sync_batch.py) must not interleave two messages."""


class _PipesLogHandler(logging.Handler):
    def __init__(self, pipes: Any):
        super().__init__()
        self._pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            method = getattr(self._pipes.log, "warning" if level == "warn" else level, self._pipes.log.info)
            with _PIPES_LOCK:
                method(self.format(record))
        except Exception:  # logging must never take the script down
            pass


class ScriptRun:
    """The running script's link to the outside world (Pipes when present)."""

    def __init__(self, logger: logging.Logger, pipes: Any | None):
        self.log = logger
        self.pipes = pipes
        self.summary: dict[str, Any] = {}
        """What is known of the JSON summary so far: printed with an `error` field if the run fails."""
        self.summary_printed = False

    @property
    def under_dagster(self) -> bool:
        return self.pipes is not None

    def report_materialization(self, metadata: Mapping[str, Any], asset_key: str | None = None) -> None:
        if self.pipes is None:
            return
        with _PIPES_LOCK:
            self.pipes.report_asset_materialization(metadata=scrub_data(dict(metadata)), asset_key=asset_key)

    def report_check(
        self, check_name: str, passed: bool, metadata: Mapping[str, Any] | None = None,
        severity: str = "ERROR", asset_key: str | None = None,
    ) -> None:
        if self.pipes is None:
            return
        with _PIPES_LOCK:
            self.pipes.report_asset_check(
                check_name=check_name, passed=passed, severity=severity,
                metadata=scrub_data(dict(metadata or {})), asset_key=asset_key,
            )


def _make_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(f, ScrubbingFilter) for f in logger.filters):
        logger.addFilter(ScrubbingFilter())  # before any handler, Pipes included, sees the record
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    _guard_library_logs()
    return logger


def _guard_library_logs() -> None:
    """Client libraries (msal, azure, urllib3) log through the root logger: scrub what reaches it."""
    root = logging.getLogger()
    if any(isinstance(f, ScrubbingFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root.addHandler(handler)
    install_excepthook()


def write_error_file(message: str) -> None:
    target = os.environ.get(ERROR_FILE_ENV_VAR)
    if not target:
        return
    with contextlib.suppress(OSError):
        Path(target).write_text(scrub(message), encoding="utf-8")


@contextlib.contextmanager
def script_run(name: str) -> Iterator[ScriptRun]:
    """Open Pipes when launched by Dagster, else run plain; turn ScriptError into an exit code."""
    tolerate_console_encoding()
    logger = _make_logger(name)
    pipes_cm: contextlib.AbstractContextManager[Any]
    if os.environ.get(PIPES_ENV_VAR):
        from dagster_pipes import open_dagster_pipes

        pipes_cm = open_dagster_pipes()
    else:
        pipes_cm = contextlib.nullcontext(None)
    with pipes_cm as pipes:
        handler = None
        if pipes is not None:
            handler = _PipesLogHandler(pipes)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        run = ScriptRun(logger, pipes)
        exit_code: int | None = None
        crash: Exception | None = None
        try:
            yield run
        except Exception as exc:
            failure = classify_failure(exc)
            if failure is None:  # a crash (a bug): exit 1 with the traceback, for the run log
                _record_crash(run, exc)
                crash = exc
            else:
                exit_code = _fail(run, *failure)
            _cut_chain(exc)
        finally:
            if handler is not None:
                logger.removeHandler(handler)
        # Pipes reports the exception that ends the script with its whole __context__ chain (even
        # after `from None`), and a library error deep in that chain may quote a secret: the chain is
        # cut above and what remains is scrubbed (a crash keeps its type and traceback: exit 1).
        if crash is not None:
            raise crash
        if exit_code is not None:
            raise SystemExit(exit_code)


def classify_failure(exc: Exception) -> tuple[int, str] | None:
    """(exit code, message) for a foreseeable failure (contract section 8), None for a crash (a bug)."""
    if isinstance(exc, ScriptError):
        return exc.exit_code, str(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):  # a socket-level blip that escaped the script's mapping
        return EXIT_TRANSIENT, f"network error: {type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno in FILE_SYSTEM_ERRNOS:  # disk full, permission denied on our files
        return EXIT_IO, str(io_error(None, exc, "accessing"))
    return None


def _cut_chain(exc: BaseException) -> None:
    """Detach an exception from the library errors behind it and scrub its own text."""
    exc.__context__ = exc.__cause__ = None
    exc.__suppress_context__ = True
    exc.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in exc.args)


def _record_crash(run: ScriptRun, exc: BaseException) -> None:
    """The error's first line, then the traceback, for pipes_runner (run log and alert) and the JSON line."""
    text = scrub("".join(traceback.format_exception_only(type(exc), exc)).strip())
    write_error_file(f"{text}\n\n{scrub(traceback.format_exc())}")
    _print_failure_summary(run, 1, text)


def _fail(run: ScriptRun, code: int, message: str) -> int:
    """Log, file and summarise a failure (scrubbed); the caller exits with the returned code."""
    message = scrub(message)
    run.log.error(message)
    write_error_file(message)
    _print_failure_summary(run, code, message)
    return code


def _print_failure_summary(run: ScriptRun, code: int, message: str) -> None:
    try:
        print_summary({**run.summary, "error": {"code": code, "message": message}})
    except (OSError, ValueError):  # stdout closed or broken: the exit code still tells
        pass


def print_summary(summary: Mapping[str, Any]) -> None:
    """The contract's last stdout line: one JSON object (on failure too, with an `error` field)."""
    sys.stdout.write(scrub(json.dumps(scrub_data(dict(summary)), default=str)) + "\n")
    sys.stdout.flush()
