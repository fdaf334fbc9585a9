"""Pause and resume the pipeline for maintenance, so that what was stopped stays stopped.

`Stop-ScheduledTask` alone does not last: the 5-minute trigger and the wake task start the server
again, also halfway through "stop Dagster, copy a backup over analytics.duckdb". pause disables both
tasks first, then stops the server (the task's process tree, and a supervisor started by hand on the
same home), then waits until the supervisor and its processes are gone and the warehouse opens, and
says so. resume enables the tasks, starts the server task and waits until the UI answers.

    python scripts/pipeline_control.py pause  [--dagster-home PATH] [--timeout 90]
    python scripts/pipeline_control.py resume [--port 3000] [--timeout 180]

scripts\\pause_pipeline.bat and scripts\\resume_pipeline.bat run these. Exit 0 when done, 75 when
something still runs or holds the warehouse after the timeout (the message names it), 78 for bad
arguments. On Linux there is no Task Scheduler: pause stops the supervisor, resume says how to start it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO_ROOT / "dagster_home"
SETTINGS_FILE = REPO_ROOT / "scripts" / "task_settings.json"
IS_WINDOWS = os.name == "nt"
EXIT_OK, EXIT_TRANSIENT, EXIT_CONFIG = 0, 75, 78


def task_names() -> tuple[str, str]:
    settings = json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))
    return settings["task_name"], settings["task_name"] + settings["wake"]["task_name_suffix"]


def schtasks_exe() -> str:
    return str(Path(os.environ.get("SystemRoot") or r"C:\Windows") / "System32" / "schtasks.exe")


@dataclass
class TaskScheduler:
    """The schtasks.exe calls pause and resume make (a seam: the tests record them on Linux)."""

    run: Callable[[list[str]], int]

    def call(self, *args: str) -> int:
        return self.run([schtasks_exe(), *args])

    def disable(self, name: str) -> int:
        return self.call("/Change", "/TN", name, "/DISABLE")

    def enable(self, name: str) -> int:
        return self.call("/Change", "/TN", name, "/ENABLE")

    def end(self, name: str) -> int:
        return self.call("/End", "/TN", name)

    def start(self, name: str) -> int:
        return self.call("/Run", "/TN", name)


def _quiet_run(command: list[str]) -> int:  # pragma: no cover - Windows only
    return subprocess.run(command, capture_output=True, timeout=60).returncode


def default_scheduler() -> TaskScheduler | None:
    return TaskScheduler(_quiet_run) if IS_WINDOWS else None


def supervisor_pid(home: Path) -> int | None:
    """The supervisor running on this home, if it still runs: the holder its instance lock records
    (DAGSTER_HOME/daemon.lock: host, pid, start time), on this host, with the same start time (a
    reused pid is not it) and running scripts/supervisor.py (not serve.py: a team server is stopped
    by its service manager)."""
    from orchestration.hosts import host_identity
    from orchestration.instance_lock import recorded_holder, started_at

    holder = recorded_holder(home)
    if holder is None:
        return None
    host, pid, started = holder
    if host != host_identity() or started_at(pid) != started:
        return None
    try:
        if any(Path(part).name == "supervisor.py" for part in psutil.Process(pid).cmdline()):
            return pid
    except psutil.Error:
        pass
    return None


def recorded_tree(home: Path) -> list[psutil.Process]:
    """The processes the supervisor recorded (pid + start time, so a reused pid is never touched)."""
    try:
        members = json.loads((home / "supervisor.tree.json").read_text(encoding="utf-8")).get("processes", [])
    except (OSError, ValueError, AttributeError):
        return []
    alive = []
    for member in members:
        try:
            process = psutil.Process(int(member["pid"]))
            if abs(process.create_time() - float(member["started"])) < 1:
                alive.append(process)
        except (psutil.Error, KeyError, TypeError, ValueError):
            continue
    return alive


def warehouse_holder(path: Path) -> str | None:
    """None when the DuckDB file opens (or does not exist); else DuckDB's lock message."""
    if not path.exists():
        return None
    import duckdb

    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        return " ".join(str(exc).split())[:300]
    return None


def _stop_supervisor(pid: int) -> None:
    try:
        process = psutil.Process(pid)
        # POSIX: SIGTERM is the supervisor's orderly stop. Windows: TerminateProcess; its kill-on-close
        # Job object ends every process below it, and the next start marks interrupted runs failed.
        process.send_signal(signal.SIGTERM) if not IS_WINDOWS else process.terminate()
    except psutil.Error:
        pass


def pause(home: Path, warehouse: Path, scheduler: TaskScheduler | None, timeout: float,
          say: Callable[[str], None] = print) -> int:
    if scheduler is not None:
        server, wake = task_names()
        for name in (server, wake):
            code = scheduler.disable(name)
            say(f"task {name}: {'disabled' if code == 0 else f'not disabled (schtasks exit {code}: not registered?)'}")
        scheduler.end(server)
    pid = supervisor_pid(home)
    tree = recorded_tree(home)
    if pid is not None:
        say(f"stopping the supervisor (pid {pid}) on {home}")
        _stop_supervisor(pid)
    deadline = time.monotonic() + timeout
    while True:
        running = [p for p in tree if _alive(p)]
        if supervisor_pid(home) is not None and pid is not None:
            running.append(psutil.Process(pid))
        holder = warehouse_holder(warehouse)
        if not running and holder is None:
            break
        if time.monotonic() >= deadline:
            if running:
                say(f"NOT PAUSED: still running after {timeout:.0f} s: {sorted({p.pid for p in running})}")
            if holder:
                say(f"NOT PAUSED: the warehouse {warehouse} is still held: {holder}")
            return EXIT_TRANSIENT
        if running and time.monotonic() >= deadline - timeout / 2:
            for process in running:  # half the time is up: no more waiting for an orderly stop
                _kill(process)
        time.sleep(0.5)
    say(f"PAUSED: the scheduled tasks are disabled, no pipeline process runs, {warehouse} is free. "
        "Do the maintenance (e.g. copy a backup over it), then run scripts\\resume_pipeline.bat.")
    return EXIT_OK


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill(process: psutil.Process) -> None:
    try:
        process.kill()
    except psutil.Error:
        pass


def server_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return "dagster_webserver_version" in response.read().decode("utf-8", errors="replace")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def resume(port: int, scheduler: TaskScheduler | None, timeout: float, say: Callable[[str], None] = print,
           answers: Callable[[int], bool] = server_answers) -> int:
    if scheduler is None:
        say("no Task Scheduler here: start the server with scripts/start.sh (or your service manager)")
        return EXIT_OK
    server, wake = task_names()
    for name in (server, wake):
        code = scheduler.enable(name)
        say(f"task {name}: {'enabled' if code == 0 else f'not enabled (schtasks exit {code}: not registered?)'}")
    if scheduler.start(server) != 0:
        say(f"NOT RESUMED: could not start task {server}; start the server with start_dagster.bat")
        return EXIT_CONFIG
    deadline = time.monotonic() + timeout
    while not answers(port):
        if time.monotonic() >= deadline:
            say(f"NOT RESUMED: the UI at http://127.0.0.1:{port} did not answer within {timeout:.0f} s; "
                "see logs\\supervisor.log and run scripts\\doctor.bat")
            return EXIT_TRANSIENT
        time.sleep(1)
    say(f"RESUMED: tasks enabled, the server answers at http://127.0.0.1:{port}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from pipeline_common.script_support import ArgumentParser
    from pipeline_common.settings import duckdb_path

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["pause", "resume"])
    parser.add_argument("--dagster-home", type=Path, default=Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME))
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (pause 90, resume 180)")
    args = parser.parse_args(argv)
    scheduler = default_scheduler()
    if args.action == "pause":
        return pause(args.dagster_home.resolve(), duckdb_path().resolve(), scheduler, args.timeout or 90)
    return resume(args.port, scheduler, args.timeout or 180)


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # an unreadable home or settings file: 74/78, never a traceback

    sys.exit(run_main(main))
