"""Run the team server without Docker: code server, daemon and webserver as
separate supervised processes against the Postgres instance (docs/deployment.md).

Each process is watched on its own: when one dies, only that one is started again (with backoff);
the others, and runs in progress, carry on. The webserver and the daemon reconnect to a
restarted code server by themselves. Ctrl+C / SIGTERM / service stop ends every process started.

    python scripts/serve.py [--port 3000] [--host 127.0.0.1] [--code-server-port 4000] [--dagster-home DIR]
                            [--code-server-host 127.0.0.1] [--code-server-address ADDRESS]

One daemon per instance: before anything else it takes the Postgres instance's advisory lock
(orchestration.instance_lock) and holds it on its own connection for its whole life; a second
serve.py (or supervisor) on the same Postgres database exits 78 naming the host, pid and start
time of the one that runs.

Needs DAGSTER_POSTGRES_HOST, _USER, _PASSWORD, _DB (optional _PORT) in the environment or .env.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_common.script_support import (  # noqa: E402  (wrong arguments exit 78)
    ArgumentParser,
    TransientError,
    classify_failure,
    print_summary,
    run_main,
)
from scripts.postgres_instance import (  # noqa: E402
    CODE_LOCATION_NAME,
    DEFAULT_POSTGRES_HOME,
    DEPLOY_DIR,
    EXIT_CONFIG,
    REPO_ROOT,
    ConfigError,
    postgres_environment,
    prepare_postgres_home,
)
from scripts.supervisor import (  # noqa: E402
    GRACEFUL_STOP_S,
    KILL_WAIT_S,
    STABLE_AFTER_S,
    KillOnCloseJob,
    ProcessTree,
    StopOnSignal,
    add_server_arguments,
    create_job,
    end_processes,
    interrupt,
    output_logger,
    pump_output,
    restart_delay,
    setup_logging,
    start_child,
)

CODE_SERVER = "code_server"
DAEMON = "daemon"
WEBSERVER = "webserver"
POLL_S = 1.0
CODE_SERVER_READY_S = 180.0
SETUP_TIMEOUT_S = 300

log = logging.getLogger("serve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser, DEFAULT_POSTGRES_HOME)
    parser.add_argument("--code-server-port", type=int, default=4000, help="gRPC port of the code server (default 4000)")
    parser.add_argument(
        "--code-server-host", default=os.environ.get("DAGSTER_CODE_SERVER_BIND", "127.0.0.1"),
        help="address the code server binds (default DAGSTER_CODE_SERVER_BIND or 127.0.0.1: loopback only)",
    )
    parser.add_argument(
        "--code-server-address", default=None,
        help="address the daemon and webserver use to reach the code server (default: the bind address; "
        "127.0.0.1 when binding every interface)",
    )
    return parser.parse_args(argv)


WILDCARDS = {"0.0.0.0", "::", ""}


def code_server_address(args: argparse.Namespace) -> str:
    """Where the daemon and webserver (and the runs' tags) reach the code server."""
    if args.code_server_address:
        return args.code_server_address
    return "127.0.0.1" if args.code_server_host in WILDCARDS else args.code_server_host


def service_commands(args: argparse.Namespace, home: Path) -> dict[str, list[str]]:
    workspace = str(home / "workspace.yaml")
    python = sys.executable
    return {
        CODE_SERVER: [
            python, "-m", "dagster", "api", "grpc", "-h", args.code_server_host, "-p", str(args.code_server_port),
            "-m", args.module, "--location-name", CODE_LOCATION_NAME, "-d", str(REPO_ROOT),
        ],
        DAEMON: [python, "-m", "dagster._daemon", "run", "-w", workspace],
        WEBSERVER: [python, "-m", "dagster_webserver", "-h", args.host, "-p", str(args.port), "-w", workspace],
    }


def _service_logger(log_dir: Path, name: str) -> logging.Logger:
    """One service's output into `{name}.log` (rotating, patient as the supervisor's logs are)."""
    return output_logger(log_dir, f"serve.{name}", f"{name}.log")


@dataclass
class Service:
    """One supervised process: its command, the running child, and its own restart backoff."""

    name: str
    command: list[str]
    out: logging.Logger
    child: subprocess.Popen | None = None
    tree: ProcessTree | None = None
    pump: threading.Thread | None = None
    started: float = 0.0
    attempt: int = 0
    restarts: int = 0
    restart_at: float | None = None
    former_trees: list[ProcessTree] = field(default_factory=list)

    def start(self, home: Path, job: KillOnCloseJob | None = None) -> None:
        self.child = start_child(self.command, home, job)
        self.pump = pump_output(self.child.stdout, self.out)
        self.tree = ProcessTree(self.child)
        self.started = time.monotonic()
        self.restart_at = None
        log.info(f"{self.name} started, pid {self.child.pid}")

    def exited(self) -> int | None:
        return None if self.child is None else self.child.poll()


LOCK_CHECK_S = 30.0


class Serve(StopOnSignal):
    stopping = "the code server, daemon and webserver"
    logger = log

    def __init__(self, args: argparse.Namespace, home: Path, lock=None):
        super().__init__()
        self.args = args
        self.home = home
        self.lock = lock
        self.lock_checked = time.monotonic()
        self.exit_code = 0
        # Windows: every process started (and the runs they start) ends with serve.py, however
        # it ends. Linux: start_child ties each child's life to serve.py.
        self.job = create_job()
        log_dir = args.log_dir.resolve()
        self.services = {
            name: Service(name, command, _service_logger(log_dir, name))
            for name, command in service_commands(args, home).items()
        }

    def wait_for_code_server(self) -> bool:
        """Start the daemon and webserver once the code server answers, so they load it at once."""
        deadline = time.monotonic() + CODE_SERVER_READY_S
        code_server = self.services[CODE_SERVER]
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if code_server.exited() is not None:
                return False
            try:
                with socket.create_connection((code_server_address(self.args), self.args.code_server_port), timeout=1):
                    return True
            except OSError:
                self.stop_requested.wait(0.5)
        return False

    def run(self) -> int:
        self.services[CODE_SERVER].start(self.home, self.job)
        if not self.wait_for_code_server() and not self.stop_requested.is_set():
            log.warning("code server not answering yet; starting the daemon and webserver anyway")
        for name in (DAEMON, WEBSERVER):
            if not self.stop_requested.is_set():
                self.services[name].start(self.home, self.job)
        log.info(f"UI at http://{self.args.host}:{self.args.port} (DAGSTER_HOME={self.home})")
        while not self.stop_requested.wait(POLL_S):
            for service in self.services.values():
                self.supervise(service)
            self.keep_lock()
        self.stop_all()
        log.info("serve stopped")
        return self.exit_code

    def keep_lock(self) -> None:
        """The lock lives in a Postgres session: if Postgres restarted, take it again, or stop
        everything (exit 78) when another server took it in the meantime."""
        if self.lock is None or time.monotonic() - self.lock_checked < LOCK_CHECK_S:
            return
        self.lock_checked = time.monotonic()
        if self.lock.check():
            return
        from orchestration.instance_lock import InstanceLockHeld, InstanceUnavailable

        try:
            self.lock.acquire()
            log.warning("the instance lock's Postgres session was lost; lock taken again")
        except InstanceUnavailable as exc:
            log.warning(f"instance lock lost and not taken again yet: {exc}")
        except InstanceLockHeld as exc:
            log.error(f"instance lock lost and now held elsewhere, stopping: {exc}")
            self.exit_code = EXIT_CONFIG
            self.stop_requested.set()

    def supervise(self, service: Service) -> None:
        if service.tree is not None:
            service.tree.refresh()
        if service.restart_at is not None:
            if time.monotonic() >= service.restart_at:
                service.restarts += 1
                log.info(f"restarting {service.name} (restart {service.restarts})")
                service.start(self.home, self.job)
            return
        code = service.exited()
        if code is None:
            return
        # Only this process is replaced. Its own children stay: the code server's children are
        # runs in progress, which finish on their own and report to Postgres.
        if service.pump is not None:
            service.pump.join(timeout=5)
        if service.tree is not None:
            service.former_trees.append(service.tree)
        if time.monotonic() - service.started >= STABLE_AFTER_S:
            service.attempt = 0
        delay = restart_delay(service.attempt, self.args.backoff_initial, self.args.backoff_max)
        service.attempt += 1
        log.warning(f"{service.name} (pid {service.child.pid}) exited with code {code}; restarting it in {delay:.0f} s")
        service.child = None
        service.restart_at = time.monotonic() + delay

    def stop_all(self) -> None:
        """Interrupt every process as on Ctrl+C, wait, then terminate and kill whatever is left
        of any process tree ever started (orphaned runs of a replaced code server included)."""
        trees = []
        for service in self.services.values():
            if service.tree is not None:
                service.tree.refresh()
            trees.extend(service.former_trees)
            if service.child is not None and service.tree is not None:
                trees.append(service.tree)
                interrupt(service.child)
        deadline = time.monotonic() + GRACEFUL_STOP_S
        for service in self.services.values():
            if service.child is not None:
                try:
                    service.child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning(f"{service.name} did not stop in time; terminating it")
        leftovers = {p.pid: p for tree in trees for p in tree.alive()}
        end_processes(list(leftovers.values()), log)
        for service in self.services.values():
            if service.child is not None and service.child.poll() is None:
                service.child.wait(timeout=KILL_WAIT_S)
            if service.pump is not None:
                service.pump.join(timeout=5)


def _masked(line: str) -> str:
    """A child's output line with the Postgres password taken out (raw and URL-encoded)."""
    from urllib.parse import quote

    password = os.environ.get("DAGSTER_POSTGRES_PASSWORD", "")
    for form in {password, quote(password, safe="")} - {""}:
        line = line.replace(form, "***")
    return line


def prepare_instance(home: Path) -> None:
    """Create or upgrade Dagster's schema in Postgres, then fail runs a stop left in flight and
    set the duckdb pool's limit (orchestration.maintenance.recovery, as the desktop supervisor does)."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    for command in (
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        [sys.executable, "-m", "orchestration.maintenance.recovery"],
    ):
        try:
            result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                    timeout=SETUP_TIMEOUT_S, encoding="utf-8", errors="replace")
        except subprocess.TimeoutExpired:
            raise TransientError(f"`{' '.join(command[2:])}` did not finish in {SETUP_TIMEOUT_S} s: Postgres "
                                 "slow or unreachable; try again later") from None
        for line in (result.stdout + result.stderr).splitlines():
            if line.strip():
                log.info(f"{command[2]}: {_masked(line)}")
        if result.returncode != 0:  # Postgres unreachable or the schema step failed: try again later
            raise TransientError(f"`{' '.join(command[2:])}` exited {result.returncode} (see serve.log)")


def _fail(code: int, message: str) -> int:
    """serve.log and the console say why; the JSON line of contract section 8 ends stdout."""
    log.error(_masked(message))
    print_summary({"error": {"code": code, "message": _masked(message)}})
    return code


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.dagster_home.resolve()
    setup_logging(args.log_dir.resolve(), log, "serve.log")  # a log folder that cannot be written: 74, named
    from orchestration.instance_lock import (
        EXIT_UNAVAILABLE, HOLDER_ENV_VAR, InstanceLockHeld, InstanceSettingsInvalid, InstanceUnavailable,
        acquire_instance_lock,
    )
    from pipeline_common.dagster_home import dagster_home_step

    try:
        os.environ.update(postgres_environment())
        # Before anything else (nothing written, nothing migrated): one daemon per instance.
        lock = acquire_instance_lock(home, DEPLOY_DIR / "dagster.yaml")
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, f"configuration error: {exc}")
    except (InstanceLockHeld, InstanceSettingsInvalid) as exc:
        return _fail(EXIT_CONFIG, str(exc))
    except InstanceUnavailable as exc:
        return _fail(EXIT_UNAVAILABLE, f"{exc}; try again later")
    try:
        with dagster_home_step(home):  # a home that cannot be made or written: 74 naming it
            prepare_postgres_home(home)
        os.environ[HOLDER_ENV_VAR] = str(os.getpid())  # start-up recovery runs under this lock
        os.environ["DAGSTER_CODE_SERVER_HOST"] = code_server_address(args)
        os.environ["DAGSTER_CODE_SERVER_PORT"] = str(args.code_server_port)
        serve = Serve(args, home, lock)
        serve.install_signal_handlers()
        prepare_instance(home)
        return serve.run()
    except Exception as exc:  # the project's one map (script_support.classify_failure); a bug stays a traceback
        failure = classify_failure(exc)
        if failure is None:
            raise
        return _fail(*failure)
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when stopped; 74 (home or log folder), 75 (Postgres unreachable, a set-up step failed) or 78
    (arguments, variables, another server) with a message and the JSON line (contract section 8)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
