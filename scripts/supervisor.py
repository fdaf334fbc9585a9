"""Keep `dagster dev` up on the desktop: restart it with backoff when it exits, stop its whole tree cleanly.

`dagster dev` exits (code 0) as soon as its daemon or webserver dies, so nothing would run the
schedules until someone noticed. This supervisor starts it with a persistent DAGSTER_HOME inside
the project, fails runs a reboot left in flight, restarts it when it exits (any code), writes
rotating logs, and on Ctrl+C / SIGTERM / service stop ends every process it started.

    python scripts/supervisor.py [--port 3000] [--host 127.0.0.1] [--dagster-home DIR] [--max-restarts N]
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO_ROOT / "dagster_home"
# Not DAGSTER_HOME/logs: Dagster moves whatever lies there into .logs_queue/ (telemetry upload).
DEFAULT_LOG_DIR = REPO_ROOT / "logs"
CODE_LOCATION_MODULE = "orchestration.definitions"
# Names the code location (retail_sales) as dg dev and scripts/run_flow.py do, so runs, schedule
# state and the UI's links agree however Dagster was started.
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
IS_WINDOWS = os.name == "nt"

LOG_BYTES = 5_000_000
LOG_BACKUPS = 5
STABLE_AFTER_S = 600.0  # a child that ran this long resets the backoff
GRACEFUL_STOP_S = 30.0
KILL_WAIT_S = 10.0
TREE_POLL_S = 1.0

log = logging.getLogger("supervisor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1", help="webserver address (default loopback only)")
    parser.add_argument("--dagster-home", type=Path, default=DEFAULT_HOME, help=f"default {DEFAULT_HOME}")
    parser.add_argument("--module", default=CODE_LOCATION_MODULE, help=f"code location module (default {CODE_LOCATION_MODULE})")
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR, help=f"default {DEFAULT_LOG_DIR}")
    parser.add_argument(
        "--max-restarts", type=int, default=-1, help="give up after this many restarts (default: never)"
    )
    parser.add_argument("--backoff-initial", type=float, default=5.0, help="first restart delay, seconds")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="longest restart delay, seconds")
    return parser.parse_args(argv)


def restart_delay(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff: initial, 2x, 4x ... capped at maximum (attempt counts from 0)."""
    return min(maximum, initial * (2 ** min(attempt, 30)))


# --- DAGSTER_HOME ---------------------------------------------------------------------------


def prepare_home(home: Path) -> Path:
    """Create DAGSTER_HOME and refresh its dagster.yaml from the repo's copy."""
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        partial = home / "dagster.yaml.partial"
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    return home


def setup_logging(log_dir: Path) -> logging.Logger:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "supervisor.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handler.setFormatter(formatter)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    log.handlers[:] = [handler, console]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def dagster_output_logger(log_dir: Path) -> logging.Logger:
    """The child's stdout/stderr, line by line, into dagster.log (rotating)."""
    out = logging.getLogger("supervisor.dagster")
    handler = logging.handlers.RotatingFileHandler(
        log_dir / "dagster.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    out.handlers[:] = [handler]
    out.setLevel(logging.INFO)
    out.propagate = False
    return out


class SingleInstanceLock:
    """DAGSTER_HOME/supervisor.pid: a second supervisor on the same home would fail the first one's runs."""

    def __init__(self, home: Path):
        self.path = home / "supervisor.pid"

    def acquire(self) -> None:
        if self.path.exists():
            try:
                other = int(self.path.read_text(encoding="utf-8").strip())
            except ValueError:
                other = -1
            if other != os.getpid() and _is_supervisor(other):
                raise SystemExit(f"another supervisor (pid {other}) already runs on {self.path.parent}")
        self.path.write_text(str(os.getpid()), encoding="utf-8")

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def _is_supervisor(pid: int) -> bool:
    try:
        return any("supervisor.py" in part for part in psutil.Process(pid).cmdline())
    except (psutil.Error, ValueError):
        return False


# --- the child process tree --------------------------------------------------------------------


def child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def dagster_command(host: str, port: int, module: str = CODE_LOCATION_MODULE) -> list[str]:
    target = ["-w", str(WORKSPACE_FILE)] if module == CODE_LOCATION_MODULE else ["-m", module]
    return [sys.executable, "-m", "dagster", "dev", *target, "-h", host, "-p", str(port)]


def recover_interrupted_runs(home: Path) -> None:
    """Fail runs a reboot left in flight (their pool slots come back) before Dagster starts."""
    command = [sys.executable, "-m", "orchestration.ops.recovery"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=child_env(home), capture_output=True, text=True, timeout=300
    )
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip():
            log.info(f"recovery: {line}")
    if result.returncode != 0:
        log.error(f"recovery exited {result.returncode}; starting Dagster anyway")


def start_child(command: list[str], home: Path) -> subprocess.Popen:
    flags = subprocess.CREATE_NEW_PROCESS_GROUP if IS_WINDOWS else 0
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        creationflags=flags,
        # POSIX: its own session, so a terminal's Ctrl+C reaches the supervisor, which stops it in order.
        start_new_session=not IS_WINDOWS,
    )


def pump_output(stream, out: logging.Logger) -> threading.Thread:
    def _pump() -> None:
        for raw in iter(stream.readline, b""):
            out.info(raw.decode("utf-8", errors="replace").rstrip())
        stream.close()

    thread = threading.Thread(target=_pump, name="dagster-output", daemon=True)
    thread.start()
    return thread


class ProcessTree:
    """Every descendant the child ever had (pid + create time), so orphans can still be found."""

    def __init__(self, root: subprocess.Popen):
        self.root = root
        self.known: dict[int, psutil.Process] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            parent = psutil.Process(self.root.pid)
            processes = [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return
        for process in processes:
            self.known.setdefault(process.pid, process)

    def alive(self) -> list[psutil.Process]:
        # psutil.Process.is_running() also checks the create time, so a reused pid is not ours.
        return [p for p in self.known.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def interrupt(child: subprocess.Popen) -> None:
    """Ask `dagster dev` to shut down as on Ctrl+C (it then stops its webserver and daemon)."""
    try:
        if IS_WINDOWS:
            child.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            child.send_signal(signal.SIGINT)
    except (OSError, ValueError):
        pass


def stop_tree(tree: ProcessTree, graceful_s: float = GRACEFUL_STOP_S) -> None:
    """Interrupt the child, wait, then terminate and finally kill whatever of its tree is left."""
    tree.refresh()
    if tree.root.poll() is None:
        interrupt(tree.root)
        try:
            tree.root.wait(timeout=graceful_s)
        except subprocess.TimeoutExpired:
            log.warning("dagster dev did not stop in time; terminating its processes")
    leftovers = tree.alive()
    for process in leftovers:
        _quietly(process.terminate)
    _, still = psutil.wait_procs(leftovers, timeout=KILL_WAIT_S)
    for process in still:
        log.warning(f"killing pid {process.pid}")
        _quietly(process.kill)
    psutil.wait_procs(still, timeout=KILL_WAIT_S)
    if tree.root.poll() is None:
        tree.root.wait(timeout=KILL_WAIT_S)


def _quietly(action) -> None:
    try:
        action()
    except psutil.Error:
        pass


# --- the supervision loop ----------------------------------------------------------------------


class Supervisor:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.home = args.dagster_home.resolve()
        self.stop_requested = threading.Event()

    def request_stop(self, signum=None, _frame=None) -> None:
        if not self.stop_requested.is_set():
            log.info(f"stop requested (signal {signum}); stopping Dagster")
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        if IS_WINDOWS:
            signal.signal(signal.SIGBREAK, self.request_stop)

    def run(self) -> int:
        out = dagster_output_logger(self.args.log_dir.resolve())
        command = dagster_command(self.args.host, self.args.port, self.args.module)
        restarts = 0
        attempt = 0
        while not self.stop_requested.is_set():
            recover_interrupted_runs(self.home)
            if self.stop_requested.is_set():
                break
            log.info(f"starting: {' '.join(command[1:])} (DAGSTER_HOME={self.home})")
            started = time.monotonic()
            child = start_child(command, self.home)
            log.info(f"dagster dev pid {child.pid}; UI at http://{self.args.host}:{self.args.port}")
            pump = pump_output(child.stdout, out)
            tree = ProcessTree(child)
            while child.poll() is None and not self.stop_requested.wait(TREE_POLL_S):
                tree.refresh()
            if self.stop_requested.is_set():
                stop_tree(tree)
                pump.join(timeout=5)
                break
            log.warning(f"dagster dev exited with code {child.returncode}; cleaning up its processes")
            stop_tree(tree, graceful_s=0)
            pump.join(timeout=5)
            attempt = 0 if time.monotonic() - started >= STABLE_AFTER_S else attempt
            if 0 <= self.args.max_restarts <= restarts:
                log.error(f"giving up after {restarts} restarts (--max-restarts)")
                return 1
            delay = restart_delay(attempt, self.args.backoff_initial, self.args.backoff_max)
            log.info(f"restarting in {delay:.0f} s (restart {restarts + 1})")
            attempt += 1
            restarts += 1
            if self.stop_requested.wait(delay):
                break
        log.info("supervisor stopped")
        return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = prepare_home(args.dagster_home.resolve())
    setup_logging(args.log_dir.resolve())
    lock = SingleInstanceLock(home)
    lock.acquire()
    supervisor = Supervisor(args)
    supervisor.install_signal_handlers()
    try:
        return supervisor.run()
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
