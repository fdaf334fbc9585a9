"""The Dagster home (DAGSTER_HOME) as the scripts that write it see it: a failure names the folder.

scripts/supervisor.py, scripts/serve.py, scripts/status.py and scripts/run_flow.py create the home,
write its settings and lock file and open its SQLite storage (runs, schedules, event logs). When
that fails (a full disk, no permission, a file where the folder should be, a damaged database)
the script ends in exit 74 with a message that names the home, the file when it is known, and the
free space on the home's disk, never with a traceback; the files this run created and left empty
(SQLite creates a database file before its first write; a WAL index it could not finish) are
removed again, and every file that was there before is left as it was.

The exceptions are mapped by the project's one map (script_support.classify_failure); this module
only puts the home's name into the message.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pipeline_common.script_support import (
    PipelineIOError,
    ScriptError,
    damaged_database_reason,
    disk_full_error,
    free_space_text,
    io_error,
    sqlite_io_reason,
)

# The home's own SQLite files (storage of a SQLite instance); a run's event log lives beside them
# as history/runs/<run id>.db and is only probed when these are sound.
STORAGE_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")
MAX_PROBED_FILES = 200


INVENTORY_DEPTH = 3
"""How deep the before/after comparison looks: what a start creates lies at most two folders down
(daemon.lock, dagster.yaml, history/runs.db, history/runs/index.db, schedules/schedules.db); the runs'
compute logs deeper down (thousands of files after a year) are not walked at every start."""


def _inventory(home: Path) -> set[Path]:
    """Every file and folder in the home's top INVENTORY_DEPTH levels now (the home itself when it exists)."""
    found: set[Path] = set()
    if not home.is_dir():
        return found
    found.add(home)
    for folder, dirs, files in os.walk(home, onerror=lambda _: None):
        base = Path(folder)
        found.update(base / name for name in dirs)
        found.update(base / name for name in files)
        if len(base.relative_to(home).parts) >= INVENTORY_DEPTH - 1:
            dirs[:] = []  # list this folder's entries, do not descend further
    return found


def remove_new_empty(home: Path, before: set[Path]) -> None:
    """Take away what this run created and left empty: zero-byte files, then empty folders (deepest first)."""
    created = _inventory(home) - before
    for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            if path.is_symlink():
                continue
            if path.is_file() and (path.stat().st_size == 0 or _torn_index(path)):
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _torn_index(path: Path) -> bool:
    """A WAL index (`-shm`) this run began and could not finish: shorter than its 32 KiB header block, it is
    of no use to any connection (SQLite rebuilds it)."""
    return path.name.endswith("-shm") and path.stat().st_size < 32768


def damaged_files(home: Path) -> list[tuple[Path, str]]:
    """The home's SQLite files that SQLite cannot read as a database, with its reason."""
    candidates = [home / name for name in STORAGE_FILES]
    runs = home / "history" / "runs"
    if runs.is_dir():
        with contextlib.suppress(OSError):
            candidates += sorted(p for p in runs.glob("*.db") if p.name != "index.db")[:MAX_PROBED_FILES]
    damaged = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                connection.close()
        except sqlite3.DatabaseError as exc:
            reason = damaged_database_reason(exc)
            if reason is not None:
                damaged.append((path, reason))
        except (OSError, ValueError):
            continue
    return damaged


def home_failure(home: Path, exc: BaseException) -> ScriptError | None:
    """The failure of a step on the Dagster home as the message a person needs, or None (not about the home)."""
    if isinstance(exc, ScriptError) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)):
        path = Path(os.fsdecode(exc.filename)) if exc.filename else home
        if path == home:
            return io_error(home, exc, "the Dagster home")
        return PipelineIOError(f"the Dagster home {home}: {str(io_error(path, exc, '')).lstrip()}")
    if damaged_database_reason(exc) is not None:
        found = damaged_files(home)
        if found:
            listed = "; ".join(f"{path} ({reason})" for path, reason in found)
        else:
            listed = f"a database file under it ({damaged_database_reason(exc)})"
        return PipelineIOError(
            f"the Dagster home {home} is damaged: {listed}. Stop the server, move that file aside (Dagster creates "
            "it anew at the next start; the run history it held is then gone) or restore the home from a backup")
    full = disk_full_error(home, exc)
    refused = sqlite_io_reason(exc)
    if refused is not None and full is None:
        return PipelineIOError(f"the Dagster home {home}: SQLite could not read or write its storage ({refused}; "
                               f"{free_space_text(home)}); free some space on that disk and check the folder's "
                               "permissions, then re-run")
    if full is not None:
        return PipelineIOError(f"the Dagster home {home}: No space left on device ({free_space_text(home)}); "
                               "free some space on that disk, then re-run")
    if isinstance(exc, UnicodeError):
        return PipelineIOError(f"the Dagster home {home}: a file in it is not valid text ({exc}); "
                               "restore it from a backup or delete it so that it is written anew")
    return None


@contextlib.contextmanager
def dagster_home_step(home: Path) -> Iterator[None]:
    """Run a step that writes or opens the Dagster home: a failure names the home (exit 74 through the
    map) and leaves no empty file or folder this step created."""
    before = _inventory(home)
    try:
        yield
    except Exception as exc:
        remove_new_empty(home, before)
        failure = home_failure(home, exc)
        if failure is None:
            raise
        raise failure from None
