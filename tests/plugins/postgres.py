"""A real PostgreSQL server for the session, from Debian's `postgresql` package.

initdb and pg_ctl refuse to run as root, so under root the server runs as the `postgres` user
(the package creates it) in a temporary directory that user owns. It listens on 127.0.0.1 on a
free port only, with password authentication, and is stopped (and its directory removed) after
the session. scripts/test.sh installs the package when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.loopback_http import free_port

PG_USER = "dagster_test"
START_TIMEOUT_S = 60


def _pg_bin_dir() -> Path | None:
    """PG_BIN when set, else Debian's newest /usr/lib/postgresql/N/bin, else initdb on PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def environment(self, db_name: str) -> dict[str, str]:
        """DAGSTER_POSTGRES_* for one database of this server."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_DB": db_name,
        }

    def connect(self, db_name: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=db_name
        )

    def create_database(self, name: str) -> str:
        """A new, empty database (each test that writes an instance gets its own)."""
        con = self.connect()
        try:
            con.autocommit = True
            with con.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return name

    def query(self, db_name: str, sql: str, params: tuple = ()) -> list[tuple]:
        con = self.connect(db_name)
        try:
            with con.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            con.close()


def _as_postgres_user() -> dict:
    """subprocess arguments that run a command as `postgres` when we are root."""
    if not _is_root():
        return {}
    import pwd

    return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid}


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        if os.name == "nt":
            pytest.skip("no PostgreSQL here: set PG_BIN to a PostgreSQL bin folder to run the Postgres tests on Windows")
        pytest.fail("PostgreSQL is not installed: `apt-get install -y postgresql` (scripts/test.sh does this as root)")
    root = Path(tempfile.mkdtemp(prefix="pg_test_"))
    data, sockets, log_file, pw_file = root / "data", root / "sockets", root / "server.log", root / "pw"
    password = secrets.token_urlsafe(16)
    pw_file.write_text(password, encoding="utf-8")
    sockets.mkdir()
    if _is_root():
        import pwd

        entry = pwd.getpwnam("postgres")
        for path in (root, sockets, pw_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    as_postgres = _as_postgres_user()
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pw_file}",
             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions"],
            check=True, capture_output=True, timeout=120, cwd=root, **as_postgres,
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(log_file), "-w", "-t", str(START_TIMEOUT_S), "start"],
            check=True, capture_output=True, timeout=START_TIMEOUT_S + 10, cwd=root, **as_postgres,
        )
    except subprocess.CalledProcessError as exc:
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr!r}\n{tail}")
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=PG_USER, password=password)
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=60, cwd=root, **as_postgres)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database for this test, named after it."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50] + "_" + secrets.token_hex(3)
    return postgres_server.create_database(name)
