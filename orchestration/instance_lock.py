"""One daemon per Dagster instance, enforced by the instance's own storage.

scripts/supervisor.py (desktop, SQLite home) and scripts/serve.py (Postgres) take this lock before
anything else and hold it for their whole life:

- **Postgres**: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection.
  The holder's host, pid and start time are that connection's `application_name`, so whoever is
  refused can name it. When the holder dies its session ends and Postgres releases the lock
  (a host that vanishes without closing the connection: after the TCP keepalives below, or the
  server's `tcp_keepalives_*`/`idle_session_timeout` settings).
- **SQLite home**: an OS file lock (`flock`, on Windows `msvcrt.locking`) on
  `DAGSTER_HOME/daemon.lock`, which also holds the holder's host, pid and start time. The OS
  releases the lock when the holder's process ends, however it ends; a stale file is harmless.

A second holder is refused with `InstanceLockHeld` (exit 78, naming the holder); Postgres
unreachable is `InstanceUnavailable` (exit 75). Standard library plus psycopg2 (imported only for a
Postgres home) and PyYAML: the supervisor imports this before Dagster.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import yaml

from orchestration.hosts import host_identity

LOCK_FILE = "daemon.lock"
# pg_try_advisory_lock(int4, int4): "RSLK" and the lock's purpose (1 = the instance's daemon).
ADVISORY_KEY = (0x52534C4B, 1)
APPLICATION_PREFIX = "retail_sales daemon"
# The holder passes this to its own children (start-up recovery), which then do not ask again.
HOLDER_ENV_VAR = "RETAIL_SALES_INSTANCE_LOCK_HOLDER"
CONNECT_TIMEOUT_S = 10
EXIT_HELD = 78
EXIT_UNAVAILABLE = 75


class InstanceLockHeld(Exception):
    """Another process holds the instance (exit 78)."""


class InstanceUnavailable(Exception):
    """The instance's storage cannot be reached to take the lock (exit 75: try again later)."""


class InstanceSettingsInvalid(Exception):
    """The instance's dagster.yaml is not YAML, or not the shape Dagster reads (exit 78, naming the file)."""


def _process_start() -> float:
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - psutil missing or the platform refuses: the lock's time will do
        import time

        return time.time()


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _holder_text(host: str, pid: str, started: str) -> str:
    return f"host {host}, pid {pid}, started {started}"


def _resolve(value):
    """A dagster.yaml value: a literal or {env: NAME}."""
    if isinstance(value, dict) and "env" in value:
        return os.environ.get(value["env"], "")
    return value


def postgres_settings(path: Path) -> dict | None:
    """The Postgres connection of a dagster.yaml (None: it stores in SQLite, or there is none yet)."""
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None
    except (yaml.YAMLError, UnicodeError) as exc:
        raise InstanceSettingsInvalid(f"{path} is not valid YAML text: {str(exc).splitlines()[0]}") from None
    try:
        return _postgres_block(settings)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InstanceSettingsInvalid(
            f"{path}: the storage settings are not the shape Dagster reads ({type(exc).__name__}: {exc}); see "
            "https://docs.dagster.io/deployment/oss/dagster-yaml") from None


def _postgres_block(settings) -> dict | None:
    if not isinstance(settings, dict):
        raise TypeError(f"the file holds a {type(settings).__name__}, not a mapping")
    storage = settings.get("storage") or {}
    block = storage.get("postgres") if isinstance(storage, dict) else None
    if block is None:
        for key in ("run_storage", "event_log_storage"):
            entry = settings.get(key) or {}
            if "postgres" in str(entry.get("module", "")):
                block = entry.get("config") or {}
                break
    if block is None:
        return None
    db = {key: _resolve(value) for key, value in (block.get("postgres_db") or {}).items()}
    if not db and block.get("postgres_url"):
        return {"dsn": _resolve(block["postgres_url"])}
    return {
        "host": db.get("hostname"),
        "port": int(db.get("port") or 5432),
        "user": db.get("username"),
        "password": db.get("password"),
        "dbname": db.get("db_name"),
    }


class FileInstanceLock:
    """DAGSTER_HOME/daemon.lock, locked by the OS for the life of this process."""

    def __init__(self, home: Path):
        self.path = home / LOCK_FILE
        self.fd: int | None = None

    def describe(self) -> str:
        return f"the Dagster home {self.path.parent}"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise InstanceLockHeld(_refusal(self.describe(), holder)) from None
        os.set_inheritable(fd, False)
        record = f"{host_identity()}\n{os.getpid()}\n{_utc(_process_start())}\n"
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, record.encode("utf-8"))
        except OSError:  # a full disk: the lock is given up with the descriptor, the caller says why
            os.close(fd)
            raise
        self.fd = fd

    def check(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the OS drops the lock with the descriptor; the file may stay
            self.fd = None


def recorded_holder(home: Path) -> tuple[str, int, str] | None:
    """(host, pid, start time) written into DAGSTER_HOME/daemon.lock by the process that holds it, or
    held it last (the file outlives its holder: check that the pid still runs the same program)."""
    try:
        lines = (home / LOCK_FILE).read_bytes()[:4096].decode("utf-8", errors="replace").splitlines()
        return lines[0], int(lines[1]), lines[2]
    except (OSError, ValueError, IndexError):
        return None


def started_at(pid: int) -> str | None:
    """A process's start time as the lock file records it (None when it is gone)."""
    try:
        import psutil

        return _utc(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - gone, refused, or psutil missing: not the holder we can name
        return None


# Windows locks a byte range; the record lives at the start, the lock far beyond it, so a refused
# process can still read who holds it.
_WINDOWS_LOCK_OFFSET = 1 << 20


def _lock_fd(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - Windows only
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        lines = os.read(fd, 4096).decode("utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    if len(lines) >= 3:
        return _holder_text(lines[0], lines[1], lines[2])
    return "a process that has not written its name yet"


def _refusal(where: str, holder: str) -> str:
    return (
        f"another Dagster daemon already runs on {where} ({holder}); one daemon per instance: "
        "stop that one first, or give this one its own home and storage (docs/deployment.md)"
    )


class PostgresInstanceLock:
    """A session-level advisory lock on a connection kept open for the life of this process."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.connection = None

    def describe(self) -> str:
        s = self.settings
        if "dsn" in s:
            return "the Postgres instance of postgres_url"
        return f"the Postgres instance {s.get('dbname')} at {s.get('host')}:{s.get('port')}"

    def _connect(self):
        import psycopg2

        application = f"{APPLICATION_PREFIX} {os.getpid()} {int(_process_start())} {host_identity()}"[:63]
        options = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": application,
            # A holder whose host vanishes is noticed by the client side after ~1 min; the server
            # side needs its own tcp_keepalives_* (docs/deployment.md).
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
        }
        try:
            if "dsn" in self.settings:
                connection = psycopg2.connect(self.settings["dsn"], **options)
            else:
                connection = psycopg2.connect(**{k: v for k, v in self.settings.items() if v not in (None, "")}, **options)
        except psycopg2.Error as exc:
            first = (str(exc).strip().splitlines() or ["?"])[0]
            password = self.settings.get("password") or ""
            if password:
                first = first.replace(password, "***")
            raise InstanceUnavailable(f"{self.describe()} is unreachable: {first}") from None
        connection.autocommit = True
        return connection

    def acquire(self) -> None:
        connection = self._connect()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", ADVISORY_KEY)
            (granted,) = cursor.fetchone()
            if not granted:
                holder = self._holder(cursor)
                connection.close()
                raise InstanceLockHeld(_refusal(self.describe(), holder))
        self.connection = connection

    @staticmethod
    def _holder(cursor) -> str:
        cursor.execute(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
            "AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ADVISORY_KEY,
        )
        row = cursor.fetchone()
        if row is None:
            return "a holder that just went away: try again"
        application, client, backend = row
        parts = (application or "").split(" ", 4)
        if (application or "").startswith(APPLICATION_PREFIX) and len(parts) == 5:
            _, _, pid, started, host = parts
            return _holder_text(host, pid, _utc(float(started)))
        return f"Postgres session {backend} from {client or 'a local socket'} ({application or 'no application name'})"

    def check(self) -> bool:
        """Is the lock still ours? (False when the connection was lost: Postgres restarted.)"""
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means the session, and so the lock, is gone
            self.release()
            return False

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()  # ends the session: Postgres releases the lock
            except Exception:  # noqa: BLE001
                pass
            self.connection = None


def instance_lock(home: Path, settings_file: Path | None = None) -> FileInstanceLock | PostgresInstanceLock:
    """The lock that fits the instance's storage: `settings_file` (default: the home's dagster.yaml)."""
    settings = postgres_settings(settings_file or home / "dagster.yaml")
    return FileInstanceLock(home) if settings is None else PostgresInstanceLock(settings)


def acquire_instance_lock(home: Path, settings_file: Path | None = None) -> FileInstanceLock | PostgresInstanceLock:
    lock = instance_lock(home, settings_file)
    lock.acquire()
    return lock


def held_by_parent() -> bool:
    """True in a child the lock's holder started (it passes its pid in HOLDER_ENV_VAR)."""
    return os.environ.get(HOLDER_ENV_VAR, "") == str(os.getppid())


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestration.instance_lock DAGSTER_HOME`: who holds the instance (exit 0 free, 78 held)."""
    args = sys.argv[1:] if argv is None else argv
    home = Path(args[0] if args else os.environ.get("DAGSTER_HOME", ".")).resolve()
    try:
        lock = acquire_instance_lock(home)
    except InstanceLockHeld as exc:
        print(exc)
        return EXIT_HELD
    except InstanceUnavailable as exc:
        print(exc)
        return EXIT_UNAVAILABLE
    except InstanceSettingsInvalid as exc:
        print(exc)
        return EXIT_HELD  # 78, configuration
    except OSError as exc:  # the home cannot be made or written (a full disk, a file in its place)
        print(f"the Dagster home {home}: {exc}")
        return 74
    lock.release()
    print(f"free: no daemon holds {lock.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
