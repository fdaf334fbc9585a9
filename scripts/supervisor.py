"""Keep `dagster dev` up on the desktop: restart it with backoff when it exits, stop its whole tree cleanly.

`dagster dev` exits (code 0) as soon as its daemon or webserver dies, so nothing would run the
schedules until someone noticed. This supervisor starts it with a persistent DAGSTER_HOME inside
the project, fails runs a reboot left in flight, restarts it when it exits (any code), writes
rotating logs, and on Ctrl+C / SIGTERM / service stop ends every process it started.

Stopping from outside ends the whole tree too. On Windows, Task Scheduler's "End" terminates the
supervisor without running any handler; its children sit in a Job object with kill-on-close, so
Windows ends them when the supervisor's handle to the job goes. Everywhere, the supervisor records
the processes below it in DAGSTER_HOME/supervisor.tree.json and, when it starts, ends any of them
a killed predecessor left running (they would keep port 3000 or start a second daemon).

One daemon per instance: before anything else it takes the instance's lock (an OS file lock on
DAGSTER_HOME/daemon.lock, orchestration.instance_lock); a second supervisor on the same home exits
78 naming the host, pid and start time of the one that runs. Children
run in Python's UTF-8 mode, so their output is read back as the UTF-8 it is.

    python scripts/supervisor.py [--port 3000] [--host 127.0.0.1] [--dagster-home DIR] [--max-restarts N]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import logging.handlers
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

REPO_ROOT = Path(__file__).resolve().parents[1]

from pipeline_common.backoff import exponential_delay  # noqa: E402
from pipeline_common.files import PatientRotatingFileHandler, atomic_write  # noqa: E402
from pipeline_common.script_support import (  # noqa: E402
    UTF8_CHILD_ENV,
    ConfigurationError,
    ScriptError,
    TransientError,
    io_error,
    run_main,
)
DEFAULT_HOME = REPO_ROOT / "dagster_home"
# Not DAGSTER_HOME/logs: Dagster moves whatever lies there into .logs_queue/ (telemetry upload).
DEFAULT_LOG_DIR = REPO_ROOT / "logs"
CODE_LOCATION_MODULE = "orchestration.definitions"
# Names the code location (retail_sales) as dg dev and scripts/run_flow.py do, so runs, schedule
# state and the UI's links agree however Dagster was started.
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
IS_WINDOWS = os.name == "nt"

RECOVERY_TIMEOUT_S = 300
LOG_BYTES = 5_000_000
LOG_BACKUPS = 5
STABLE_AFTER_S = 600.0  # a child that ran this long resets the backoff
GRACEFUL_STOP_S = 30.0
KILL_WAIT_S = 10.0
TREE_POLL_S = 1.0
UI_POLL_S = 1.0
# dagster dev logs in colour (coloredlogs, whatever the output is); the log files get plain text.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# dagster dev warns that the repo's dagster.yaml "will not be used": it is the template the supervisor
# copies into DAGSTER_HOME before each start (prepare_home), and that copy is the one in use.
DAGSTER_YAML_NOTICE = "The dagster.yaml file will not be used to configure Dagster"
# SupersessionWarning, printed by `dagster dev` itself at every start: "`dev_command` is superseded
# ... Use 'dg dev' instead." dg dev serves the same code location (README), but copies no dagster.yaml
# into the home; the supervisor keeps `dagster dev`. Filtered by its message in that process only (a
# `-W` filter cannot name Dagster's category class before Dagster is importable).
DAGSTER_DEV_SUPERSESSION_FILTER = "ignore:Function `dev_command` is superseded"

log = logging.getLogger("supervisor")


def add_server_arguments(parser: argparse.ArgumentParser, default_home: Path) -> None:
    """The options the supervisor and scripts/serve.py share: where the UI listens, the home, the
    code location, the logs and the restart backoff."""
    parser.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1", help="webserver address (default loopback only)")
    parser.add_argument("--dagster-home", type=Path, default=default_home, help=f"default {default_home}")
    parser.add_argument("--module", default=CODE_LOCATION_MODULE, help=f"code location module (default {CODE_LOCATION_MODULE})")
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR, help=f"default {DEFAULT_LOG_DIR}")
    parser.add_argument("--backoff-initial", type=float, default=5.0, help="first restart delay, seconds")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="longest restart delay, seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser, DEFAULT_HOME)
    parser.add_argument(
        "--max-restarts", type=int, default=-1, help="give up after this many restarts (default: never)"
    )
    return parser.parse_args(argv)


def restart_delay(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff: initial, 2x, 4x ... capped at maximum (attempt counts from 0)."""
    return exponential_delay(attempt, initial, maximum)


# --- DAGSTER_HOME ---------------------------------------------------------------------------


def prepare_home(home: Path) -> Path:
    """Create DAGSTER_HOME and refresh its dagster.yaml from the repo's copy."""
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        with atomic_write(target, fsync=False) as partial:  # Windows: an editor may have the old copy open
            shutil.copyfile(source, partial)
    return home


class LogFileHandler(PatientRotatingFileHandler):
    """A log file that cannot be written (a full disk, a folder taken away) costs its lines, never the
    supervision: one line on the console says so, at most once a minute, without a traceback."""

    REPORT_EVERY_S = 60.0
    _reported = float("-inf")
    last_error: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = self.last_error = sys.exc_info()[1]
        if time.monotonic() - self._reported < self.REPORT_EVERY_S:
            return
        self._reported = time.monotonic()
        try:
            sys.stderr.write(f"supervisor: cannot write {self.baseFilename}: {error}; log lines are lost until "
                             "it can be written again\n")
        except (AttributeError, OSError, ValueError):  # pythonw.exe: no console at all
            pass


def _rotating(logger: logging.Logger, path: Path, line_format: str, *also: logging.Handler) -> logging.Logger:
    # Patient: rotating must not fail while the analyst tails the log (Get-Content -Wait).
    handler = LogFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    formatter = logging.Formatter(line_format)
    for each in (handler, *also):
        each.setFormatter(formatter)
    logger.handlers[:] = [handler, *also]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def setup_logging(log_dir: Path, logger: logging.Logger = log, file_name: str = "supervisor.log") -> logging.Logger:
    """`file_name` in log_dir (rotating) and the console: starts, exits and restarts. A log folder that
    cannot be made or written is exit 74 naming it (PipelineIOError)."""
    path = log_dir / file_name
    existed, folder_existed = path.exists(), log_dir.exists()
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path.open("a", encoding="utf-8").close()
    except (ConnectionError, TimeoutError):  # a log folder on a network share that does not answer: 75 (the map)
        raise
    except OSError as exc:
        raise io_error(exc.filename or log_dir, exc, "opening the log folder") from None
    _rotating(logger, path, "%(asctime)s %(levelname)s %(message)s", logging.StreamHandler(sys.stdout))
    file_handler = logger.handlers[0]
    logger.info(f"{Path(sys.argv[0]).name} starting, pid {os.getpid()}")  # and the log can be written (a full disk)
    error = getattr(file_handler, "last_error", None)
    if isinstance(error, OSError) and not isinstance(error, (ConnectionError, TimeoutError)):
        logger.handlers[:] = []
        with contextlib.suppress(OSError):  # closing flushes again, into the same full disk
            file_handler.close()
        with contextlib.suppress(OSError):
            if not existed and path.stat().st_size == 0:
                path.unlink()  # no empty log of a run that never started
            if not folder_existed:
                log_dir.rmdir()
        raise io_error(path, error, "writing the log")
    return logger


def output_logger(log_dir: Path, name: str = "supervisor.dagster", file_name: str = "dagster.log") -> logging.Logger:
    """A child's stdout/stderr, line by line, into `file_name` (rotating)."""
    return _rotating(logging.getLogger(name), log_dir / file_name, "%(message)s")


def dagster_output_logger(log_dir: Path) -> logging.Logger:
    """`dagster dev`'s stdout/stderr, line by line, into dagster.log (rotating)."""
    return output_logger(log_dir)


def take_instance_lock(home: Path):
    """One daemon per instance (orchestration.instance_lock): an OS file lock on DAGSTER_HOME/daemon.lock
    for a SQLite home, a Postgres advisory lock for a Postgres one, held until this process ends.
    Another holder: exit 78 naming its host, pid and start time; storage unreachable: exit 75; settings
    that are not YAML of the right shape: exit 78 naming the file."""
    from orchestration.instance_lock import (
        InstanceLockHeld, InstanceSettingsInvalid, InstanceUnavailable, acquire_instance_lock,
    )

    try:
        return acquire_instance_lock(home, REPO_ROOT / "dagster.yaml")  # the settings it is about to use
    except (InstanceLockHeld, InstanceSettingsInvalid) as exc:
        raise ConfigurationError(str(exc)) from None
    except InstanceUnavailable as exc:
        raise TransientError(f"{exc}; try again later") from None


# --- the child process tree --------------------------------------------------------------------


def child_env(home: Path) -> dict[str, str]:
    from orchestration.instance_lock import HOLDER_ENV_VAR

    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    # Start-up recovery (a child) runs under this process's instance lock and must not ask again.
    env[HOLDER_ENV_VAR] = str(os.getpid())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("DBT_USE_COLORS", "false")  # the runs' dbt lines as plain text (their logs, dagster.log)
    # UTF-8 mode for every Python below (dagster, run workers, dbt, the legacy scripts): on Windows
    # they would otherwise print in the ANSI code page (cp1252), which pump_output reads as UTF-8.
    env.update(UTF8_CHILD_ENV)
    return env


def dagster_command(host: str, port: int, module: str = CODE_LOCATION_MODULE) -> list[str]:
    target = ["-w", str(WORKSPACE_FILE)] if module == CODE_LOCATION_MODULE else ["-m", module]
    return [sys.executable, "-W", DAGSTER_DEV_SUPERSESSION_FILTER, "-m", "dagster", "dev", *target,
            "-h", host, "-p", str(port)]


def recover_interrupted_runs(home: Path) -> None:
    """Fail runs a reboot left in flight (their pool slots come back) before Dagster starts."""
    command = [sys.executable, "-m", "orchestration.maintenance.recovery"]
    try:
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=child_env(home), capture_output=True, timeout=RECOVERY_TIMEOUT_S,
            encoding="utf-8", errors="replace",  # the child runs in UTF-8 mode
        )
    except (OSError, subprocess.SubprocessError) as exc:  # could not start, or hung: Dagster starts regardless
        log.error(f"recovery did not run to the end ({type(exc).__name__}: {exc}); starting Dagster anyway")
        return
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip():
            log.info(f"recovery: {line}")
    if result.returncode != 0:
        log.error(f"recovery exited {result.returncode}; starting Dagster anyway")


def _terminate_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM this child when the supervisor dies, so `dagster dev` stops its own processes."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000


def child_creation_flags(is_windows: bool, has_console: bool) -> int:
    """Windows: its own process group (Ctrl+Break stops it in order); without a console of our own
    (pythonw.exe, the Interactive task) also no window: a console window would pop up at every logon,
    and closing it would end the server."""
    if not is_windows:
        return 0
    return CREATE_NEW_PROCESS_GROUP | (0 if has_console else CREATE_NO_WINDOW)


def start_child(command: list[str], home: Path, job: KillOnCloseJob | None = None) -> subprocess.Popen:
    flags = child_creation_flags(IS_WINDOWS, sys.stdout is not None)
    child = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        creationflags=flags,
        # POSIX: its own session, so a terminal's Ctrl+C reaches the supervisor, which stops it in order.
        start_new_session=not IS_WINDOWS,
        preexec_fn=_terminate_with_parent if sys.platform.startswith("linux") else None,
    )
    if job is not None and not job.holds_supervisor:
        job.add(child.pid)  # late (after CreateProcess): only when the supervisor could not join the job itself
    return child


# --- Windows: a Job object that ends the whole tree when the supervisor goes ---------------------


class _BasicLimit(ctypes.Structure):
    # Fixed-width fields (not wintypes.DWORD, which is 8 bytes on 64-bit Linux) so the layout is
    # Windows' on every platform and can be checked there: JOBOBJECT_BASIC_LIMIT_INFORMATION.
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class _IoCounters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
        "ReadTransferCount", "WriteTransferCount", "OtherTransferCount",
    )]


class JobExtendedLimit(ctypes.Structure):
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION (144 bytes on 64-bit Windows)."""

    _fields_ = [
        ("BasicLimitInformation", _BasicLimit),
        ("IoInfo", _IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9
PROCESS_SET_QUOTA = 0x0100
PROCESS_TERMINATE = 0x0001


class KillOnCloseJob:  # pragma: no cover - Windows only; the layout is tested everywhere
    """A Windows Job object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE.

    Only the supervisor holds its handle. When the supervisor ends, however it ends (Task
    Scheduler's "End", Stop-ScheduledTask, a crash), Windows closes the handle and terminates
    every process in the job: `dagster dev` and everything it started, which inherit the job.
    """

    def __init__(self) -> None:
        from ctypes import wintypes

        self._kernel32 = k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.CreateJobObjectW.restype = wintypes.HANDLE
        k32.CreateJobObjectW.argtypes = [wintypes.LPVOID, wintypes.LPCWSTR]
        k32.SetInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD]
        k32.OpenProcess.restype = wintypes.HANDLE
        k32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        k32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
        k32.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        self.handle = k32.CreateJobObjectW(None, None)
        if not self.handle:
            raise OSError(ctypes.get_last_error(), "CreateJobObjectW failed")
        info = JobExtendedLimit()
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not k32.SetInformationJobObject(
            self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS, ctypes.byref(info), ctypes.sizeof(info)
        ):
            raise OSError(ctypes.get_last_error(), "SetInformationJobObject failed")

    holds_supervisor = False
    """True once the supervisor itself is in the job: every process it starts is then in the job from
    its first instruction (no window between CreateProcess and AssignProcessToJobObject in which the
    venv's python.exe redirector could start the real interpreter outside it)."""

    def adopt_supervisor(self) -> None:
        self.holds_supervisor = self.add(os.getpid())

    def add(self, pid: int) -> bool:
        k32 = self._kernel32
        process = k32.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
        if not process:
            log.warning(f"could not open pid {pid} to add it to the job (error {ctypes.get_last_error()})")
            return False
        try:
            if not k32.AssignProcessToJobObject(self.handle, process):
                log.warning(f"could not add pid {pid} to the job (error {ctypes.get_last_error()}); "
                            "it is still stopped in order, but not if the supervisor is killed")
                return False
            return True
        finally:
            k32.CloseHandle(process)

    def terminate(self) -> None:
        self._kernel32.TerminateJobObject(self.handle, 1)


def create_job() -> KillOnCloseJob | None:
    if not IS_WINDOWS:
        return None
    try:
        job = KillOnCloseJob()
        job.adopt_supervisor()  # at start-up, before any child exists
        return job
    except OSError as exc:  # pragma: no cover - Windows only
        log.warning(f"no kill-on-close Job object ({exc}); children are still stopped in order")
        return None


# --- every platform: the tree a killed supervisor left behind ------------------------------------


def tree_file(home: Path) -> Path:
    return home / "supervisor.tree.json"


def record_tree(home: Path, tree: ProcessTree) -> None:
    """Remember the processes below us (pid + start time), for the next supervisor to clean up."""
    members = []
    for process in tree.known.values():
        try:
            members.append({"pid": process.pid, "started": process.create_time()})
        except psutil.Error:
            continue
    target = tree_file(home)
    try:
        with atomic_write(target, fsync=False, timeout=2.0) as partial:
            partial.write_text(json.dumps({"supervisor": os.getpid(), "processes": members}), encoding="utf-8")
    except (OSError, ScriptError) as exc:  # bookkeeping must never stop the supervision
        log.warning(f"could not record the process tree in {target}: {exc}")


def end_orphans(home: Path) -> list[int]:
    """End what a killed supervisor left running (matched by pid AND start time, never a reused pid)."""
    path = tree_file(home)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    members = recorded.get("processes") if isinstance(recorded, dict) else None
    if not isinstance(members, list):  # not what record_tree writes: nothing to trust in it
        log.warning(f"ignoring {path}: not a process list as the supervisor writes it")
        forget_tree(home)
        return []
    survivors = []
    for member in members:
        try:
            process = psutil.Process(int(member["pid"]))
            if abs(process.create_time() - float(member["started"])) < 1.0 and process.status() != psutil.STATUS_ZOMBIE:
                survivors.append(process)
        except (psutil.Error, KeyError, TypeError, ValueError, OverflowError):
            continue
    for process in survivors:
        log.warning(f"ending pid {process.pid} ({_name(process)}), left running by a supervisor that was killed")
        _quietly(process.kill)
    psutil.wait_procs(survivors, timeout=KILL_WAIT_S)
    forget_tree(home)
    return [p.pid for p in survivors]


def forget_tree(home: Path) -> None:
    try:
        tree_file(home).unlink(missing_ok=True)
    except OSError as exc:
        log.warning(f"could not delete {tree_file(home)}: {exc}")


def _name(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()[:4]) or process.name()
    except psutil.Error:
        return "?"


def plain_line(raw: bytes, home: Path | None = None) -> str:
    """A line of the child's output as the log file gets it: no colour codes; Dagster's dagster.yaml
    notice followed by what it means here."""
    line = ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).rstrip()
    if DAGSTER_YAML_NOTICE in line and home is not None:
        line += (f" [supervisor: expected. The repo's dagster.yaml is the template; the supervisor copied it to "
                 f"{home / 'dagster.yaml'} before this start, and that copy is the one in use.]")
    return line


def pump_output(stream, out: logging.Logger, home: Path | None = None) -> threading.Thread:
    def _pump() -> None:
        for raw in iter(stream.readline, b""):
            out.info(plain_line(raw, home))
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


def ui_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def announce_when_ui_answers(url: str, child: subprocess.Popen, stop: threading.Event) -> threading.Thread:
    """Poll the webserver until it answers, then log (console and supervisor.log) that the UI is ready."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def _poll() -> None:
        started = time.monotonic()
        while child.poll() is None and not stop.is_set():
            try:
                with opener.open(f"{url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        log.info(f"Dagster UI ready: open {url} (answered {time.monotonic() - started:.0f} s after start)")
                        return
            except (OSError, ValueError):
                pass
            stop.wait(UI_POLL_S)

    thread = threading.Thread(target=_poll, name="ui-ready", daemon=True)
    thread.start()
    return thread


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
    end_processes(tree.alive())
    if tree.root.poll() is None:
        tree.root.wait(timeout=KILL_WAIT_S)


def end_processes(processes: list[psutil.Process], logger: logging.Logger = log) -> None:
    """Terminate, wait, then kill what is still there (a process already gone is fine)."""
    for process in processes:
        _quietly(process.terminate)
    _, still = psutil.wait_procs(processes, timeout=KILL_WAIT_S)
    for process in still:
        logger.warning(f"killing pid {process.pid}")
        _quietly(process.kill)
    psutil.wait_procs(still, timeout=KILL_WAIT_S)


def _quietly(action) -> None:
    try:
        action()
    except psutil.Error:
        pass


def install_stop_handlers(handler) -> None:
    """Ctrl+C, a polite kill and (Windows) Ctrl+Break all ask for the same orderly stop."""
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if IS_WINDOWS:
        signal.signal(signal.SIGBREAK, handler)


# --- the supervision loop ----------------------------------------------------------------------


WAIT_SLICE_S = 0.5


def wait_or_stop(stop: threading.Event, seconds: float) -> bool:
    """Wait up to `seconds` unless a stop is requested. In short slices: on Windows, Python before 3.14
    cannot interrupt a lock wait, so Ctrl+C during a 300 s backoff would wait out the 300 s; between
    slices the signal handler runs and sets `stop`."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return stop.is_set()
        if stop.wait(min(WAIT_SLICE_S, remaining)):
            return True


class StopOnSignal:
    """Ctrl+C, a polite kill or Ctrl+Break set `stop_requested`; the supervision loop then stops in order."""

    stopping = "Dagster"
    logger = log

    def __init__(self) -> None:
        self.stop_requested = threading.Event()

    def request_stop(self, signum=None, _frame=None) -> None:
        if not self.stop_requested.is_set():
            self.logger.info(f"stop requested (signal {signum}); stopping {self.stopping}")
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        install_stop_handlers(self.request_stop)


class Supervisor(StopOnSignal):
    def __init__(self, args: argparse.Namespace):
        super().__init__()
        self.args = args
        self.home = args.dagster_home.resolve()

    def run(self) -> int:
        out = dagster_output_logger(self.args.log_dir.resolve())
        command = dagster_command(self.args.host, self.args.port, self.args.module)
        job = create_job()
        ended = end_orphans(self.home)
        if ended:
            log.warning(f"ended {len(ended)} process(es) a killed supervisor left running: {ended}")
        restarts = 0
        attempt = 0
        while not self.stop_requested.is_set():
            recover_interrupted_runs(self.home)
            if self.stop_requested.is_set():
                break
            log.info(f"starting: {' '.join(command[1:])} (DAGSTER_HOME={self.home})")
            started = time.monotonic()
            try:
                child = start_child(command, self.home, job)
            except OSError as exc:  # no process (too many open files, out of memory): as an exit, with backoff
                log.error(f"could not start dagster dev: {exc}")
                child = None
            if child is None:
                if 0 <= self.args.max_restarts <= restarts:
                    raise self.gave_up(restarts)
                delay = restart_delay(attempt, self.args.backoff_initial, self.args.backoff_max)
                log.info(f"trying again in {delay:.0f} s (restart {restarts + 1})")
                attempt, restarts = attempt + 1, restarts + 1
                if wait_or_stop(self.stop_requested, delay):
                    break
                continue
            url = ui_url(self.args.host, self.args.port)
            log.info(f"dagster dev pid {child.pid}; the UI will be at {url}: a line says so when it answers")
            pump = pump_output(child.stdout, out, self.home)
            announce_when_ui_answers(url, child, self.stop_requested)
            tree = ProcessTree(child)
            record_tree(self.home, tree)
            while child.poll() is None and not self.stop_requested.wait(TREE_POLL_S):
                before = len(tree.known)
                tree.refresh()
                if len(tree.known) != before:
                    record_tree(self.home, tree)
            if self.stop_requested.is_set():
                stop_tree(tree)
                forget_tree(self.home)
                pump.join(timeout=5)
                break
            log.warning(f"dagster dev exited with code {child.returncode}; cleaning up its processes")
            stop_tree(tree, graceful_s=0)
            forget_tree(self.home)
            pump.join(timeout=5)
            attempt = 0 if time.monotonic() - started >= STABLE_AFTER_S else attempt
            if 0 <= self.args.max_restarts <= restarts:
                raise self.gave_up(restarts)
            delay = restart_delay(attempt, self.args.backoff_initial, self.args.backoff_max)
            log.info(f"restarting in {delay:.0f} s (restart {restarts + 1})")
            attempt += 1
            restarts += 1
            if wait_or_stop(self.stop_requested, delay):
                break
        log.info("supervisor stopped")
        return 0

    def gave_up(self, restarts: int) -> TransientError:
        """--max-restarts reached: exit 75 (Task Scheduler's restart-on-failure starts it again later)."""
        message = (f"giving up after {restarts} restarts (--max-restarts {self.args.max_restarts}): dagster dev "
                   f"keeps exiting; see {self.args.log_dir.resolve() / 'dagster.log'}")
        log.error(message)
        return TransientError(message)


def _main(argv: list[str] | None = None) -> int:
    from pipeline_common.dagster_home import dagster_home_step

    args = parse_args(argv)
    home = args.dagster_home.resolve()
    with dagster_home_step(home):  # a home that cannot be made or written: exit 74 naming it
        home.mkdir(parents=True, exist_ok=True)
        # Before anything else: a second supervisor must not even refresh the running one's dagster.yaml.
        lock = take_instance_lock(home)
        try:
            prepare_home(home)
        except BaseException:
            lock.release()
            raise
    try:
        setup_logging(args.log_dir.resolve())
        supervisor = Supervisor(args)
        supervisor.install_signal_handlers()
        return supervisor.run()
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when stopped; 74 (home or log folder), 75 (--max-restarts reached, storage unreachable) or 78
    (arguments, another supervisor, settings) with a message and the JSON line (contract section 8)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
