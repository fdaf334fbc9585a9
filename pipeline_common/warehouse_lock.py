"""Is the DuckDB warehouse held by another process? One answer for the exporter, dbt and the checks.

DuckDB words a held database file differently per platform. From its source (duckdb/duckdb,
src/common/local_file_system.cpp, commit 044a04a7cd39e6e8235f756597ae42dde084e5e5):

- POSIX (`fcntl` lock refused): `Could not set lock on file "<path>": Conflicting lock is held in
  <program> (PID <n>) by user <u>. ... See also https://duckdb.org/docs/current/connect/concurrency`
- Windows (`CreateFileW` refused the share mode): `Cannot open file "<path>": <FormatMessageW of
  GetLastError()>` followed, when the Restart Manager names the holder, by
  `\\nFile is already open in \\n<program path> (PID <n>)`. The Win32 text is
  ERROR_SHARING_VIOLATION (32) `The process cannot access the file because it is being used by
  another process.` or ERROR_LOCK_VIOLATION (33) `The process cannot access the file because
  another process has locked a portion of the file.` (English Windows; DuckDB's own
  `File is already open in` does not depend on the display language).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_common.backoff import jittered_wait
from pipeline_common.script_support import ConfigurationError, TransientError

LOCK_MESSAGE_MARKERS = (
    "could not set lock on file",  # POSIX
    "conflicting lock is held in",  # POSIX, who holds it
    "file is already open in",  # Windows, who holds it (Restart Manager)
    "being used by another process",  # Windows ERROR_SHARING_VIOLATION
    "another process has locked a portion of the file",  # Windows ERROR_LOCK_VIOLATION
)
_HOLDER_RE = re.compile(r"(?:Conflicting lock is held in|File is already open in)\s*(.+?\(PID \d+\)(?: by user \S+)?)")

MAX_BACKOFF_SECONDS = 15.0


class WarehouseLockedError(TransientError):
    """The warehouse stayed locked by another process for longer than the caller would wait."""


def is_lock_message(text: str) -> bool:
    """True when a DuckDB (or dbt quoting DuckDB) error text says another process holds the file."""
    lowered = text.lower()
    return any(marker in lowered for marker in LOCK_MESSAGE_MARKERS)


def is_lock_error(error: BaseException) -> bool:
    return is_lock_message(str(error))


def lock_holder(text: str) -> str | None:
    """`C:\\...\\python.exe (PID 4242)` when DuckDB named the holder, else None."""
    match = _HOLDER_RE.search(text)
    if match is None:
        return None
    return " ".join(match.group(1).split()).rstrip(".")


def holder_hint(error: BaseException) -> str:
    """Who holds the lock, for a message: DuckDB's own words when it named the process."""
    holder = lock_holder(str(error))
    return f"held by {holder}" if holder else "a dbt build, the exporter or a SQL client"


def describe_lock(path: Path, error: BaseException) -> str:
    return f"warehouse {path} is locked by another process ({holder_hint(error)})"


def connect_read_only(
    path: Path,
    timeout_seconds: float,
    log: logging.Logger | Any,
    sleep: Callable[[float], None] = time.sleep,
):
    """Open the warehouse read-only; while another process holds its lock, back off and retry.

    Raises ConfigurationError when the file is missing or cannot be opened for another reason,
    WarehouseLockedError (exit 75, retried by Dagster) when the lock outlasts `timeout_seconds`.
    """
    import duckdb

    if not path.is_file():
        raise ConfigurationError(f"warehouse not found at {path} (DUCKDB_PATH); build it with dbt first")
    deadline = time.monotonic() + timeout_seconds
    attempt = 0
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise ConfigurationError(f"cannot open warehouse {path}: {exc}") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(
                    f"warehouse {path} stayed locked by another process for {timeout_seconds:.0f} s "
                    f"({holder_hint(exc)}); giving up, a retry later may succeed. DuckDB said: {exc}"
                ) from None
            # Jitter keeps several waiting readers from retrying in lock-step.
            wait = jittered_wait(attempt, 0.5, MAX_BACKOFF_SECONDS, remaining)
            log.info(f"warehouse {path.name} is locked by another process; retrying in {wait:.1f} s "
                     f"({holder_hint(exc)})")
            sleep(wait)
            attempt += 1
