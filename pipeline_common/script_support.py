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
from urllib.parse import urlsplit

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
                     "disk is full",
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
        errno.ENOTDIR: "a file stands where a folder of that path should be: move it away or choose another folder",
        errno.EEXIST: "a file stands where that folder should be: move it away or choose another folder",
        errno.ENAMETOOLONG: "the path is too long: choose a shorter folder",
    }.get(exc.errno or 0, "check the disk and the folder's permissions, then re-run")
    return PipelineIOError(f"{action} {path}: {reason} ({free_space_text(path)}); {hint}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but wrong arguments are a configuration error (exit 78, contract section 8), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # the JSON line (contract section 8), on stdout
            print_summary({"error": {"code": EXIT_CONFIG, "message": f"{self.prog}: {message}"}})
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
    from pipeline_common.tls import use_os_trust_store

    use_os_trust_store()  # every HTTPS client of the script verifies against the OS trust store
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
    import socket

    from pipeline_common.tls import certificate_failure

    reason = certificate_failure(exc)
    if reason is not None:  # never transient: a certificate does not fix itself (contract section 1)
        return EXIT_CONFIG, (f"a server's certificate could not be verified ({reason}); if a corporate proxy "
                             "inspects HTTPS, its root CA belongs in the operating system's certificate store "
                             "(docs/sources.md)")
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):  # a network blip the script did not map
        return EXIT_TRANSIENT, f"network error: {type(exc).__name__}: {exc}"
    http = _requests_failure(exc)
    if http is not None:  # requests' errors are OSErrors too: they must not read as the pipeline's own files
        return http
    if isinstance(exc, OSError):  # any errno: disk full, permission, a file where a folder should be, a name too long
        return EXIT_IO, str(io_error(None, exc, "accessing"))
    if isinstance(exc, UnicodeError):  # text that is not in its encoding (input files are checked earlier, named)
        return EXIT_BAD_DATA, f"a file is not valid text in its encoding: {exc}"
    if isinstance(exc, MemoryError):
        return EXIT_IO, "out of memory: close other programs or lower the work's size, then re-run"
    damage = damaged_database_reason(exc)
    if damage is not None:  # a SQLite file of the pipeline (the Dagster home's storage) that is not a database
        return EXIT_IO, (f"a database file of the pipeline is damaged ({damage}): restore it from a backup, or "
                         "move it aside so that it is created anew")
    refused = sqlite_io_reason(exc)
    if refused is not None:  # SQLite's own words for a file system that refused it (no errno reaches Python)
        return EXIT_IO, (f"a database file of the pipeline could not be read or written ({refused}): check the "
                         "free space and the folder's permissions, then re-run")
    full = disk_full_error("the pipeline's files", exc)
    if full is not None:  # a library (DuckDB, Hyper, SQLite under DAGSTER_HOME) saying the disk is full
        return EXIT_IO, str(full)
    return None


# What SQLite says of a file that is not (or no longer) a database; SQLAlchemy wraps it (`.orig`).
DAMAGED_DATABASE_MARKERS = ("file is not a database", "database disk image is malformed", "file is encrypted")
# What SQLite says when the file system refuses it (a full disk where no journal fits, permissions, a folder gone).
SQLITE_IO_MARKERS = ("disk i/o error", "unable to open database file", "attempt to write a readonly database")


def _sqlite_reason(exc: BaseException, markers: tuple[str, ...]) -> str | None:
    import sqlite3

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.DatabaseError):
            text = str(current).lower()
            for marker in markers:
                if marker in text:
                    return marker
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def damaged_database_reason(exc: BaseException) -> str | None:
    """SQLite's reason when `exc` (or the DB-API error SQLAlchemy wraps in it) says a file is damaged."""
    return _sqlite_reason(exc, DAMAGED_DATABASE_MARKERS)


def sqlite_io_reason(exc: BaseException) -> str | None:
    """SQLite's reason when `exc` (or the error SQLAlchemy wraps) says the file system refused it."""
    return _sqlite_reason(exc, SQLITE_IO_MARKERS)


def _requests_failure(exc: Exception) -> tuple[int, str] | None:
    """A `requests` error the script did not map: an HTTP answer by its status (429 and 5xx transient,
    401/403 rejected credentials, other 4xx configuration), anything else (connection, timeout, proxy) 75.
    Never quotes the server's body: it can echo what was sent."""
    requests_exceptions = sys.modules.get("requests.exceptions")
    if requests_exceptions is None or not isinstance(exc, requests_exceptions.RequestException):
        return None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    host = urlsplit(getattr(response, "url", "") or "").hostname or "the server"
    if isinstance(status, int):
        if status == 429 or status >= 500:
            return EXIT_TRANSIENT, f"{host} answered HTTP {status}: will be retried"
        if status in (401, 403):
            return EXIT_CONFIG, f"{host} refused the credentials (HTTP {status}): check the configured account"
        return EXIT_CONFIG, f"{host} answered HTTP {status}: check the configured URL and names"
    return EXIT_TRANSIENT, f"network error: {type(exc).__name__}"


def _scrub_arg(value: Any) -> Any:
    """An exception argument with every secret masked, at any depth (bytes, containers, objects)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "replace")
        cleaned = scrub(text)
        return value if cleaned == text else cleaned.encode()
    if isinstance(value, Mapping):
        return {_scrub_arg(k): _scrub_arg(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_scrub_arg(item) for item in value) if not hasattr(value, "_fields") else value
    if isinstance(value, (int, float, bool, type(None))):
        return value
    text = repr(value)
    return value if scrub(text) == text else scrub(text)  # an object whose repr quotes a secret


def run_main(main: Any, argv: list[str] | None = None) -> int:
    """For a script that does not run inside `script_run` (status.py, doctor.py, the generators):
    its foreseeable failures end in the contract's codes through the same map (classify_failure),
    with the message on stderr and the JSON line on stdout; a bug still shows its traceback."""
    tolerate_console_encoding()
    try:
        return main(argv)
    except Exception as exc:
        failure = classify_failure(exc)
        if failure is None:
            raise
        code, message = failure
        message = scrub(message)
        # AttributeError: pythonw.exe (the supervisor's Interactive task) has no stderr or stdout at all
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            print_summary({"error": {"code": code, "message": message}})
        return code


def _cut_chain(exc: BaseException) -> None:
    """Detach an exception from the library errors behind it and scrub everything it can print.

    Pipes reports the ending exception by its str() and its arguments; both may quote a secret (a
    URL with a SAS, a token in a library's message, bytes of a response body)."""
    exc.__context__ = exc.__cause__ = None
    exc.__suppress_context__ = True
    exc.args = tuple(_scrub_arg(arg) for arg in exc.args)
    for name, value in list(vars(exc).items()) if hasattr(exc, "__dict__") else []:
        cleaned = _scrub_arg(value)
        if cleaned is not value:
            try:
                setattr(exc, name, cleaned)
            except (AttributeError, TypeError):
                pass
    if isinstance(exc, OSError):
        for name in ("filename", "filename2", "strerror"):
            value = getattr(exc, name, None)
            if isinstance(value, str) and scrub(value) != value:
                setattr(exc, name, scrub(value))
    try:
        text = str(exc)
    except Exception:
        return
    if scrub(text) != text:  # a __str__ of its own still quotes a secret: keep the type, mask the text
        cleaned_text = scrub(text)
        original = type(exc)
        masked = type(original.__name__, (original,), {"__str__": lambda self: cleaned_text,
                                                       "__module__": original.__module__})
        try:
            exc.__class__ = masked
        except TypeError:  # a built-in type whose layout forbids it: arguments already scrubbed
            pass


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
