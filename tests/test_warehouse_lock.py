"""A held warehouse is recognised in DuckDB's POSIX and Windows wording, by the exporter, dbt and the checks.

The Windows texts are built exactly as DuckDB builds them (duckdb/duckdb,
src/common/local_file_system.cpp @ 044a04a7: `Cannot open file "%s": %s%s`, the middle part
FormatMessageW of GetLastError(), the last the Restart Manager's `File is already open in`),
prefixed with `IO Error: ` as DuckDB's Python exception carries it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.warehouse import sentinels
from orchestration.warehouse.assets import raise_for_failure
from pipeline_common.script_support import EXIT_CONFIG, EXIT_TRANSIENT, ScriptError
from pipeline_common.warehouse_lock import connect_read_only, lock_holder

WAREHOUSE = r"C:\Users\analyst\OneDrive - Retail (UK) & Co\pipeline\data\warehouse\analytics.duckdb"
SHARING_VIOLATION = "The process cannot access the file because it is being used by another process.\r\n"
LOCK_VIOLATION = "The process cannot access the file because another process has locked a portion of the file.\r\n"
HOLDER = r"C:\Users\analyst\pipeline\.venv\Scripts\python.exe"

WINDOWS_HELD = [
    f'IO Error: Cannot open file "{WAREHOUSE}": {SHARING_VIOLATION}\nFile is already open in \n{HOLDER} (PID 4242)',
    f'IO Error: Cannot open file "{WAREHOUSE}": {SHARING_VIOLATION}',  # Restart Manager found nobody
    f'IO Error: Cannot open file "{WAREHOUSE}": {LOCK_VIOLATION}',
]
POSIX_HELD = [
    'IO Error: Could not set lock on file "/srv/data/analytics.duckdb": Conflicting lock is held in '
    "/usr/bin/python3.11 (PID 311) by user analyst. See also https://duckdb.org/docs/current/connect/concurrency",
]
NOT_HELD = [
    f'IO Error: Cannot open file "{WAREHOUSE}": Access is denied.\r\n',
    f'IO Error: Cannot open file "{WAREHOUSE}": The system cannot find the path specified.\r\n',
    'IO Error: The file "/srv/data/analytics.duckdb" exists, but it is not a valid DuckDB database file!',
]


class FlakyConnect:
    """duckdb.connect that raises the given errors first, then opens for real."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        self.real = duckdb.connect
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise duckdb.IOException(self.errors.pop(0))
        return self.real(*args, **kwargs)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return path


@pytest.mark.parametrize("message", WINDOWS_HELD + POSIX_HELD, ids=["win-rm", "win-sharing", "win-lock", "posix"])
def test_the_exporter_waits_while_the_warehouse_is_held(message, warehouse, monkeypatch):
    flaky = FlakyConnect([message, message])
    monkeypatch.setattr(duckdb, "connect", flaky)
    waits: list[float] = []
    con = connect_read_only(warehouse, 60, logging.getLogger("t"), sleep=waits.append)
    assert con.execute("SELECT x FROM t").fetchone() == (1,)
    assert flaky.calls == 3 and len(waits) == 2


@pytest.mark.parametrize("message", NOT_HELD, ids=["denied", "no-path", "not-duckdb"])
def test_other_open_errors_fail_at_once_as_configuration(message, warehouse, monkeypatch):
    monkeypatch.setattr(duckdb, "connect", FlakyConnect([message]))
    with pytest.raises(ScriptError) as raised:
        connect_read_only(warehouse, 60, logging.getLogger("t"), sleep=lambda s: pytest.fail("must not wait"))
    # a file that is not a DuckDB database is a damaged warehouse (74, restore from backup); the rest 78
    assert raised.value.exit_code == (74 if message == NOT_HELD[2] else EXIT_CONFIG)


def test_a_lock_outlasting_the_timeout_is_transient_and_names_the_holder(warehouse, monkeypatch):
    monkeypatch.setattr(duckdb, "connect", FlakyConnect([WINDOWS_HELD[0]] * 100))
    with pytest.raises(ScriptError) as raised:
        connect_read_only(warehouse, 0, logging.getLogger("t"), sleep=lambda s: None)
    assert raised.value.exit_code == EXIT_TRANSIENT
    assert f"{HOLDER} (PID 4242)" in str(raised.value)


def test_the_holder_is_read_from_both_wordings():
    assert lock_holder(WINDOWS_HELD[0]) == f"{HOLDER} (PID 4242)"
    assert lock_holder(POSIX_HELD[0]) == "/usr/bin/python3.11 (PID 311) by user analyst"
    assert lock_holder(WINDOWS_HELD[1]) is None


class FailedInvocation:
    def __init__(self, message: str):
        self.message = message

    def is_successful(self) -> bool:
        return False

    def get_error(self) -> Exception:
        return RuntimeError(self.message)


@pytest.mark.parametrize("message", WINDOWS_HELD + POSIX_HELD, ids=["win-rm", "win-sharing", "win-lock", "posix"])
def test_dbt_meeting_the_lock_is_retried(message):
    dbt_said = f"Runtime Error in model stg_uk_orders (models/staging/uk/stg_uk_orders.sql)\n  {message}"
    with pytest.raises(dg.RetryRequested):
        raise_for_failure(FailedInvocation(dbt_said))


def test_dbt_failing_for_another_reason_is_permanent():
    with pytest.raises(dg.Failure) as raised:
        raise_for_failure(FailedInvocation(f"Runtime Error\n  {NOT_HELD[0]}"))
    assert raised.value.allow_retries is False


@pytest.mark.parametrize("message", [WINDOWS_HELD[0], POSIX_HELD[0]], ids=["windows", "posix"])
def test_the_sentinel_checks_wait_for_a_held_warehouse(message, warehouse, monkeypatch):
    monkeypatch.setattr(duckdb, "connect", FlakyConnect([message]))
    monkeypatch.setattr(sentinels.time, "sleep", lambda s: None)
    con = sentinels.connect_read_only(warehouse)
    assert con.execute("SELECT x FROM t").fetchone() == (1,)


def test_the_sentinel_checks_fail_at_once_on_another_error(warehouse, monkeypatch):
    monkeypatch.setattr(duckdb, "connect", FlakyConnect([NOT_HELD[0]]))
    monkeypatch.setattr(sentinels.time, "sleep", lambda s: pytest.fail("must not wait"))
    with pytest.raises(dg.Failure) as raised:
        sentinels.connect_read_only(warehouse)
    assert raised.value.allow_retries is False


HOLD_WRITE_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_a_real_writer_in_another_process_is_recognised(warehouse):
    """DuckDB's real message on this platform (the POSIX wording here) goes through the same function."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(ScriptError) as raised:
            connect_read_only(warehouse, 1.0, logging.getLogger("t"))
        assert raised.value.exit_code == EXIT_TRANSIENT
        assert time.monotonic() - started >= 1.0
        assert f"(PID {holder.pid})" in str(raised.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)
