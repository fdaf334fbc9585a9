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
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

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


class _PipesLogHandler(logging.Handler):
    def __init__(self, pipes: Any):
        super().__init__()
        self._pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            method = getattr(self._pipes.log, "warning" if level == "warn" else level, self._pipes.log.info)
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
        self.pipes.report_asset_materialization(metadata=dict(metadata), asset_key=asset_key)

    def report_check(
        self, check_name: str, passed: bool, metadata: Mapping[str, Any] | None = None,
        severity: str = "ERROR", asset_key: str | None = None,
    ) -> None:
        if self.pipes is None:
            return
        self.pipes.report_asset_check(
            check_name=check_name, passed=passed, severity=severity,
            metadata=dict(metadata or {}), asset_key=asset_key,
        )


def _make_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    return logger


def write_error_file(message: str) -> None:
    target = os.environ.get(ERROR_FILE_ENV_VAR)
    if not target:
        return
    with contextlib.suppress(OSError):
        Path(target).write_text(message, encoding="utf-8")


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
        try:
            yield run
        except ScriptError as exc:
            _fail(run, exc.exit_code, str(exc))
        except OSError as exc:  # the pipeline's own files: disk full, permission denied (contract: 74)
            _fail(run, EXIT_IO, str(io_error(None, exc, "accessing")))
        except Exception as exc:  # a crash (a bug): exit 1 with the traceback, for the run log
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            write_error_file(f"{text}\n\n{traceback.format_exc()}")
            _print_failure_summary(run, 1, text)
            raise
        finally:
            if handler is not None:
                logger.removeHandler(handler)


def _fail(run: ScriptRun, code: int, message: str) -> None:
    run.log.error(message)
    write_error_file(message)
    _print_failure_summary(run, code, message)
    raise SystemExit(code) from None


def _print_failure_summary(run: ScriptRun, code: int, message: str) -> None:
    try:
        print_summary({**run.summary, "error": {"code": code, "message": message}})
    except (OSError, ValueError):  # stdout closed or broken: the exit code still tells
        pass


def print_summary(summary: Mapping[str, Any]) -> None:
    """The contract's last stdout line: one JSON object (on failure too, with an `error` field)."""
    sys.stdout.write(json.dumps(dict(summary), default=str) + "\n")
    sys.stdout.flush()
