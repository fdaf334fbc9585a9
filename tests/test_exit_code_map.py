"""Totality: the one exception-to-exit-code map (script_support.classify_failure), enumerated, and
faults injected into the real scripts' environment.

The map: every OSError errno is 74 (the pipeline's own files), except the network ones (75); a text
decode error is 65; configuration errors (a ConfigError too) 78; a library saying the disk is full
(DuckDB, Hyper, SQLite under DAGSTER_HOME) 74; anything else is a bug (None: exit 1 with traceback).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_common.config import ConfigError
from pipeline_common.script_support import (
    BadDataError,
    ConfigurationError,
    PipelineIOError,
    TransientError,
    classify_failure,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"


@pytest.mark.parametrize("code", sorted(errno.errorcode), ids=lambda c: errno.errorcode[c])
def test_every_errno_maps_to_a_contract_code(code):
    exc = OSError(code, os.strerror(code), "/some/path")
    found = classify_failure(exc)
    assert found is not None
    # the network's errnos (a reset, a refused or timed-out connection, a broken pipe) may pass: 75
    assert found[0] == (75 if isinstance(exc, (ConnectionError, TimeoutError)) else 74)
    assert "/some/path" not in found[1] or os.strerror(code) in found[1]


@pytest.mark.parametrize(("exc", "code"), [
    (ConnectionResetError(errno.ECONNRESET, "reset"), 75),
    (TimeoutError("timed out"), 75),
    (__import__("socket").gaierror(-2, "Name or service not known"), 75),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 65),
    (ConfigError("pipeline.yaml line 3: duplicate key"), 78),
    (ConfigurationError("x"), 78),
    (BadDataError("x"), 65),
    (TransientError("x"), 75),
    (PipelineIOError("x"), 74),
    (sqlite3.OperationalError("database or disk is full"), 74),
    (RuntimeError('IO Error: Could not write file "x": No space left on device'), 74),
    (MemoryError(), 74),
    (sqlite3.DatabaseError("file is not a database"), 74),
    (sqlite3.DatabaseError("database disk image is malformed"), 74),
    (sqlite3.OperationalError("disk I/O error"), 74),
    (sqlite3.OperationalError("attempt to write a readonly database"), 74),
    # as Dagster's storage raises them: SQLAlchemy's wrapper, the SQLite error as .orig
    (__import__("sqlalchemy").exc.DatabaseError("PRAGMA x", {}, sqlite3.DatabaseError("file is not a database")), 74),
    (__import__("sqlalchemy").exc.OperationalError("PRAGMA x", {}, sqlite3.OperationalError("disk I/O error")), 74),
])
def test_the_map_for_each_exception_class(exc, code):
    found = classify_failure(exc)
    assert found is not None and found[0] == code, found


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("bug"), AttributeError("bug"), ZeroDivisionError(),
                                 sqlite3.OperationalError("no such table: runs")])
def test_a_bug_stays_a_bug(exc):
    assert classify_failure(exc) is None


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def _json_line(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
@pytest.mark.parametrize("extra", [["--list"], ["--tables", "sales", "--name", "x", "--no-publish"]])
def test_a_damaged_warehouse_is_74_with_how_to_restore(tmp_path, isolated_env, damage, extra):
    import duckdb

    warehouse = tmp_path / "warehouse" / "analytics.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table sales as select range as id from range(100000)")
    data = warehouse.read_bytes()
    warehouse.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\x00garbage" * 4096)
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DUCKDB_PATH": str(warehouse)}
    done = _run([str(SCRIPTS / "create_hyper_files" / "duckdb_to_tableau_server.py"), *extra], env)
    assert done.returncode == 74, (done.stdout, done.stderr)
    message = _json_line(done)["error"]["message"]
    assert message.startswith("the warehouse file is damaged: restore from backup with")
    assert "Traceback" not in done.stderr


def test_data_dir_that_is_a_file_is_74_for_the_sync(tmp_path, isolated_env, sync_landing):
    sync_landing.write_orders("UK", __import__("datetime").date(2026, 11, 19), rows=3)
    blocker = tmp_path / "data_is_a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    env = {**os.environ, "DATA_DIR": str(blocker)}
    done = _run([str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", "UK", "--dataset", "ingest_orders",
                 "--as-of", "2026-11-19", "--days-back", "1"], env)
    assert done.returncode == 74, (done.stdout, done.stderr)
    assert str(blocker) in _json_line(done)["error"]["message"]
    assert "Traceback" not in done.stderr


def test_status_with_a_dagster_home_that_is_a_file_is_74(tmp_path, isolated_env):
    home = tmp_path / "home_is_a_file"
    home.write_text("x", encoding="utf-8")
    done = _run([str(REPO_ROOT / "scripts" / "status.py"), "--dagster-home", str(home)], dict(os.environ))
    assert done.returncode == 74, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert _json_line(done)["error"]["code"] == 74


@pytest.mark.parametrize("script", [
    [str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", "UK"],
    [str(SCRIPTS / "create_hyper_files" / "duckdb_to_tableau_server.py"), "--bogus"],
    [str(SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"), "--year", "twenty"],
    [str(REPO_ROOT / "scripts" / "status.py"), "--at", "tomorrow"],
    [str(REPO_ROOT / "scripts" / "dev" / "generate_dbt_staging.py"), "--nope"],
], ids=lambda s: Path(s[0]).name)
def test_argument_errors_print_the_json_line_too(isolated_env, script):
    done = _run(script, dict(os.environ))
    assert done.returncode == 78, (done.stdout, done.stderr)
    assert _json_line(done)["error"]["code"] == 78


def _http_error(status: int):
    import requests

    response = requests.Response()
    response.status_code = status
    response.url = "https://tableau.example.test/api/3.22/auth/signin"
    response._content = b"<error>secret-body</error>"
    return requests.HTTPError(f"{status} error", response=response)


@pytest.mark.parametrize(("make", "code"), [
    (lambda: __import__("requests").ConnectionError("Max retries exceeded"), 75),
    (lambda: __import__("requests").Timeout("read timed out"), 75),
    (lambda: __import__("requests").exceptions.ProxyError("proxy refused"), 75),
    (lambda: _http_error(503), 75),
    (lambda: _http_error(429), 75),
    (lambda: _http_error(401), 78),
    (lambda: _http_error(404), 78),
])
def test_requests_errors_are_network_not_the_pipelines_files(make, code):
    """requests' exceptions subclass OSError: they must not be reported as a disk or permission fault (74),
    and the server's body is never quoted."""
    found = classify_failure(make())
    assert found is not None and found[0] == code, found
    assert "secret-body" not in found[1]
