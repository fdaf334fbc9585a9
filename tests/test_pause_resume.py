"""scripts/pipeline_control.py (pause_pipeline.bat / resume_pipeline.bat): the tasks are disabled before
the server is stopped, pause confirms only when no pipeline process runs and the warehouse opens,
and resume enables the tasks, starts the server task and waits for the UI.

The stand-in supervisor is a real process named supervisor.py that holds the DuckDB file open and
has a child, recorded the way scripts/supervisor.py records its tree. Task Scheduler cannot run
here: its calls go through the TaskScheduler seam and are recorded (the real schtasks.exe calls run
in scripts\\windows_acceptance.bat on the PC).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
from scripts import pipeline_control as control

SERVER, WAKE = control.task_names()

STAND_IN = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time
    from pathlib import Path
    import duckdb, psutil
    warehouse, home, obey = sys.argv[1], sys.argv[2], sys.argv[3] == "obey"
    con = duckdb.connect(warehouse)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(home, "supervisor.tree.json"), "w") as f:
        json.dump({"supervisor": os.getpid(),
                   "processes": [{"pid": child.pid, "started": psutil.Process(child.pid).create_time()}]}, f)
    from orchestration.instance_lock import acquire_instance_lock
    lock = acquire_instance_lock(Path(home))  # what scripts/supervisor.py takes first: it names the holder
    def stop(*_):
        child.terminate(); child.wait(); con.close(); sys.exit(0)
    signal.signal(signal.SIGTERM, stop if obey else signal.SIG_IGN)
    print(child.pid, flush=True)
    time.sleep(120)
""")


def _stand_in(tmp_path: Path, obey: bool = True) -> tuple[subprocess.Popen, psutil.Process, Path, Path]:
    home, warehouse = tmp_path / "home", tmp_path / "analytics.duckdb"
    home.mkdir()
    script = tmp_path / "supervisor.py"
    script.write_text(STAND_IN, encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script), str(warehouse), str(home), "obey" if obey else "stubborn"],
                               stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(process.stdout.readline()))
    return process, child, home, warehouse


class Recorder:
    def __init__(self, codes: dict[str, int] | None = None):
        self.calls: list[list[str]] = []
        self.codes = codes or {}

    def __call__(self, command: list[str]) -> int:
        self.calls.append(command[1:])
        assert command[0].endswith("schtasks.exe")
        return self.codes.get(command[1], 0)


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_pause_disables_both_tasks_before_stopping_and_confirms_the_warehouse_is_free(tmp_path):
    process, child, home, warehouse = _stand_in(tmp_path)
    recorder = Recorder()
    said: list[str] = []
    assert control.pause(home, warehouse, control.TaskScheduler(recorder), timeout=30, say=said.append) == 0
    assert recorder.calls == [["/Change", "/TN", SERVER, "/DISABLE"], ["/Change", "/TN", WAKE, "/DISABLE"],
                              ["/End", "/TN", SERVER]]
    assert process.wait(timeout=10) == 0 and _gone(child)
    duckdb.connect(str(warehouse)).close()  # free for the restore
    assert said[-1].startswith("PAUSED:") and "resume_pipeline.bat" in said[-1]


def test_pause_ends_a_supervisor_that_does_not_stop_in_time(tmp_path):
    process, child, home, warehouse = _stand_in(tmp_path, obey=False)
    said: list[str] = []
    started = time.monotonic()
    assert control.pause(home, warehouse, None, timeout=6, say=said.append) == 0
    assert time.monotonic() - started < 10
    assert process.wait(timeout=10) != 0 and _gone(child)
    assert said[-1].startswith("PAUSED:")


def test_pause_never_stops_a_program_that_reused_an_ended_supervisors_pid(tmp_path):
    """The lock file outlives its holder. A live process under the recorded pid that is not that
    supervisor (another program; or the same pid started at another time) is left alone."""
    from orchestration.hosts import host_identity

    home, warehouse = tmp_path / "home", tmp_path / "analytics.duckdb"
    home.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(psutil.Process(other.pid).create_time()))
        for record in (f"{host_identity()}\n{other.pid}\n{started}\n",
                       f"{host_identity()}\n{os.getpid()}\n2020-01-01 00:00:00 UTC\n",
                       f"another-host\n{other.pid}\n{started}\n"):
            (home / "daemon.lock").write_text(record, encoding="utf-8")
            said: list[str] = []
            assert control.pause(home, warehouse, None, timeout=4, say=said.append) == 0
            assert not any("stopping the supervisor" in line for line in said), said
            assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_pause_does_not_confirm_while_another_program_holds_the_warehouse(tmp_path):
    warehouse = tmp_path / "analytics.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
                               "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        said: list[str] = []
        home = tmp_path / "home"
        home.mkdir()
        assert control.pause(home, warehouse, None, timeout=2, say=said.append) == 75
        assert said[-1].startswith(f"NOT PAUSED: the warehouse {warehouse} is still held")
        assert holder.poll() is None  # not ours: never touched
    finally:
        holder.kill()
        holder.wait()


def test_resume_enables_both_tasks_starts_the_server_and_waits_for_the_ui():
    recorder = Recorder()
    answers = iter([False, False, True])
    said: list[str] = []
    assert control.resume(3000, control.TaskScheduler(recorder), timeout=30, say=said.append,
                          answers=lambda port: next(answers)) == 0
    assert recorder.calls == [["/Change", "/TN", SERVER, "/ENABLE"], ["/Change", "/TN", WAKE, "/ENABLE"],
                              ["/Run", "/TN", SERVER]]
    assert said[-1] == "RESUMED: tasks enabled, the server answers at http://127.0.0.1:3000"


def test_resume_says_so_when_the_ui_never_answers():
    said: list[str] = []
    assert control.resume(3000, control.TaskScheduler(Recorder()), timeout=1.5, say=said.append,
                          answers=lambda port: False) == 75
    assert said[-1].startswith("NOT RESUMED") and "doctor.bat" in said[-1]


def test_resume_without_a_registered_task_points_at_start_dagster():
    said: list[str] = []
    assert control.resume(3000, control.TaskScheduler(Recorder({"/Run": 1})), timeout=5, say=said.append) == 78
    assert "start_dagster.bat" in said[-1]


def test_the_scripts_run_from_the_command_line_on_linux(tmp_path, isolated_env):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline_control.py"), "pause",
                             "--dagster-home", str(tmp_path), "--timeout", "5"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("PAUSED:")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline_control.py"), "resume"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "scripts/start.sh" in result.stdout


@pytest.mark.skipif(sys.platform != "win32", reason="Windows only: schtasks.exe; the calls are recorded above")
def test_on_windows_the_scheduler_seam_calls_schtasks_from_system_root():  # pragma: no cover - Windows twin
    assert control.default_scheduler() is not None
    assert Path(control.schtasks_exe()).is_file()
