"""The Task Scheduler tasks register_task.ps1 registers: the XML scripts/windows_task.py writes for it.

register_task.ps1 runs windows_task.py and hands its XML to Register-ScheduledTask unchanged, so
parsing that XML checks what Windows will be told: elevation, priority, restart, wake time,
credentials and the quoting of a repo path with spaces, `(` and `&`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.plugins.cmd_model import windows_argv

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "scripts" / "windows_task.py"
REGISTER = REPO / "scripts" / "register_task.ps1"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
AWKWARD_ROOT = r"C:\Users\Ana María\OneDrive - Retail (UK) & Co\pipeline (prod)"
USER = r"RETAIL\ana.maria"


def generate(tmp_path: Path, *extra: str, tz: str = "Europe/London") -> dict[str, ET.Element]:
    """Run windows_task.py as register_task.ps1 does; {task name: parsed XML}. The PC's zone is given
    with --timezone, not TZ (which Windows' C runtime ignores)."""
    out = tmp_path / "tasks"
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--user", USER, "--out-dir", str(out), "--repo-root", AWKWARD_ROOT,
         "--timezone", tz, *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    index = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    return {item["name"]: ET.fromstring(Path(item["xml"]).read_text(encoding="utf-8")) for item in index}


def text(task: ET.Element, path: str) -> str | None:
    node = task.find(path, NS)
    return None if node is None else node.text


def test_register_script_needs_no_elevation_and_registers_for_the_console_user():
    """A standard user registers for themselves; an admin elevating for the analyst registers for the
    analyst (the console user), not for the admin; only the boot trigger depends on elevation."""
    script = REGISTER.read_text(encoding="utf-8")
    assert "#Requires -RunAsAdministrator" not in script
    assert "[string]$User" in script and "Win32_ComputerSystem" in script  # the console user by default
    assert '$GeneratorArgs += "--no-boot-trigger"' in script and "if (-not $Elevated)" in script
    assert "powershell -ExecutionPolicy Bypass -File .\\scripts\\register_task.ps1" in script
    assert "Register-ScheduledTask -TaskName $Task.name -Xml $Xml" in script
    assert "windows_task.py" in script and "cmd" not in script.lower().replace("command", "")
    readme_and_ops = (REPO / "README.md").read_text(encoding="utf-8") + (REPO / "docs" / "operations.md").read_text(
        encoding="utf-8")
    assert "-ExecutionPolicy Bypass -File .\\scripts\\register_task.ps1" in readme_and_ops
    assert "in PowerShell: `.\\scripts\\register_task.ps1`" not in readme_and_ops  # what Restricted refuses
    assert "scripts\\register_task.bat" in readme_and_ops  # the route where policy forbids scripts


def test_a_standard_user_gets_logon_and_repeat_triggers_without_the_boot_trigger(tmp_path):
    server = generate(tmp_path, "--no-boot-trigger")["DailySalesDagster"]
    assert server.find("t:Triggers/t:BootTrigger", NS) is None
    assert text(server, "t:Triggers/t:LogonTrigger/t:UserId") == USER
    assert text(server, "t:Triggers/t:TimeTrigger/t:Repetition/t:Interval") is not None
    assert text(server, "t:Principals/t:Principal/t:LogonType") == "Password"


def test_s4u_logon_stores_no_password_and_keeps_the_boot_trigger(tmp_path):
    tasks = generate(tmp_path, "--logon", "S4U")
    for task in tasks.values():
        assert text(task, "t:Principals/t:Principal/t:LogonType") == "S4U"
    assert tasks["DailySalesDagster"].find("t:Triggers/t:BootTrigger", NS) is not None


def test_an_interactive_task_has_no_console_window_to_close(tmp_path):
    tasks = generate(tmp_path, "--logon", "Interactive")
    for task in tasks.values():
        for action in task.findall("t:Actions/t:Exec", NS):
            program = windows_argv(action.find("t:Command", NS).text)[0]
            assert not program.lower().endswith("python.exe"), program  # pythonw.exe: no window
    [action] = tasks["DailySalesDagster"].findall("t:Actions/t:Exec", NS)
    assert windows_argv(action.find("t:Command", NS).text) == [AWKWARD_ROOT + r"\.venv\Scripts\pythonw.exe"]


def test_a_changed_password_cannot_hammer_the_account_with_restarts(tmp_path):
    """A stale stored password fails every start: Task Scheduler's own restarts stay few (the
    5-minute trigger remains; docs/operations.md says to update the password or use S4U)."""
    server = generate(tmp_path)["DailySalesDagster"]
    assert int(text(server, "t:Settings/t:RestartOnFailure/t:Count")) <= 3


def _windows_task():
    from scripts import windows_task

    return windows_task


def test_the_no_powershell_route_runs_schtasks_from_system_root_with_a_password_prompt():
    wt = _windows_task()
    tasks = wt.build(wt.load_settings(), AWKWARD_ROOT, USER, "Password")
    files = {t["name"]: rf"C:\Temp\{t['name']}.xml" for t in tasks}
    commands = wt.schtasks_create_commands(tasks, files, USER, env={"SystemRoot": r"D:\WINDOWS"})
    assert commands[0] == [r"D:\WINDOWS\System32\schtasks.exe", "/Create", "/TN", "DailySalesDagster",
                           "/XML", r"C:\Temp\DailySalesDagster.xml", "/F", "/RU", USER, "/RP", "*"]
    for logon in ("S4U", "Interactive"):  # the XML's principal; no password anywhere
        tasks = wt.build(wt.load_settings(), AWKWARD_ROOT, USER, logon)
        assert all("/RP" not in c and "/RU" not in c for c in wt.schtasks_create_commands(tasks, files, USER))


def test_register_hands_schtasks_utf16_xml_and_removes_it_afterwards():
    wt = _windows_task()
    user = r"RETAIL\seán.o'brien"
    tasks = wt.build(wt.load_settings(), AWKWARD_ROOT, user, "Password")
    seen = []

    def schtasks(command):
        path = Path(command[command.index("/XML") + 1])
        data = path.read_bytes()
        assert data[:2] == b"\xff\xfe"  # UTF-16 LE with BOM, as schtasks /Create /XML expects
        task = ET.fromstring(data.decode("utf-16").split("?>", 1)[1])
        seen.append((path, text(task, "t:Principals/t:Principal/t:UserId")))
        return subprocess.CompletedProcess(command, 0)

    assert wt.register(tasks, user, run=schtasks) == 0
    assert [u for _, u in seen] == [user, user]
    assert not any(path.exists() or path.parent.exists() for path, _ in seen)
    assert wt.register(tasks, user, run=lambda c: subprocess.CompletedProcess(c, 1)) == 78


def test_the_wake_task_finds_schtasks_wherever_windows_is(tmp_path):
    wake = generate(tmp_path)["DailySalesDagster-Wake"]
    starts = wake.findall("t:Actions/t:Exec", NS)[0]
    assert starts.find("t:Command", NS).text == r"%SystemRoot%\System32\schtasks.exe"


def test_server_task_runs_the_supervisor_directly_with_a_safely_quoted_awkward_path(tmp_path):
    server = generate(tmp_path)["DailySalesDagster"]
    [action] = server.findall("t:Actions/t:Exec", NS)
    command = action.find("t:Command", NS).text
    assert windows_argv(command) == [AWKWARD_ROOT + r"\.venv\Scripts\python.exe"]
    arguments = action.find("t:Arguments", NS).text
    assert windows_argv(arguments) == [AWKWARD_ROOT + r"\scripts\supervisor.py"]
    assert action.find("t:WorkingDirectory", NS).text == AWKWARD_ROOT
    assert "cmd" not in command.lower()  # no cmd /c: `(` and `&` are never seen by a shell


def test_server_task_settings_priority_restart_and_credentials(tmp_path):
    server = generate(tmp_path)["DailySalesDagster"]
    assert text(server, "t:Settings/t:Priority") == "5"  # 4-6 is normal CPU and I/O priority; 7 is below
    assert text(server, "t:Settings/t:ExecutionTimeLimit") == "PT0S"
    assert text(server, "t:Settings/t:MultipleInstancesPolicy") == "IgnoreNew"
    assert text(server, "t:Settings/t:DisallowStartIfOnBatteries") == "false"
    assert text(server, "t:Settings/t:WakeToRun") == "false"  # the 5-minute trigger must not wake the PC
    # A supervisor that exits is started again by the repeating trigger (IgnoreNew while it runs).
    interval = text(server, "t:Triggers/t:TimeTrigger/t:Repetition/t:Interval")
    assert re.fullmatch(r"PT([1-9]|10)M", interval)
    assert server.find("t:Triggers/t:TimeTrigger/t:Repetition/t:Duration", NS) is None  # for ever
    assert server.find("t:Triggers/t:BootTrigger", NS) is not None
    assert text(server, "t:Triggers/t:LogonTrigger/t:UserId") == USER
    # Password logon: the user's network credentials (proxy, UNC DATA_DIR) and runs with nobody logged on.
    assert text(server, "t:Principals/t:Principal/t:LogonType") == "Password"
    assert text(server, "t:Principals/t:Principal/t:UserId") == USER
    assert text(server, "t:Principals/t:Principal/t:RunLevel") == "LeastPrivilege"


def test_interactive_variant_has_no_boot_trigger_and_no_stored_password(tmp_path):
    server = generate(tmp_path, "--interactive")["DailySalesDagster"]
    assert text(server, "t:Principals/t:Principal/t:LogonType") == "InteractiveToken"
    assert server.find("t:Triggers/t:BootTrigger", NS) is None
    assert server.find("t:Triggers/t:LogonTrigger", NS) is not None


@pytest.mark.parametrize(("tz", "expected"), [("Europe/London", "07:10"), ("Europe/Berlin", "08:10")])
def test_wake_task_wakes_the_pc_minutes_before_the_morning_refresh(tmp_path, tz, expected):
    from pipeline_common.config import load_pipeline_config

    [morning] = [j for j in load_pipeline_config().jobs.scheduled if j.name == "uk_morning_refresh_with_backup"]
    assert morning.cron.split()[:2] == ["15", "7"]  # 07:15 London
    wake = generate(tmp_path, tz=tz)["DailySalesDagster-Wake"]
    assert text(wake, "t:Settings/t:WakeToRun") == "true"
    start = dt.datetime.fromisoformat(text(wake, "t:Triggers/t:CalendarTrigger/t:StartBoundary"))
    assert f"{start:%H:%M}" == expected  # local time of the PC, 5 minutes before 07:15 London
    assert text(wake, "t:Triggers/t:CalendarTrigger/t:ScheduleByDay/t:DaysInterval") == "1"
    starts, awake = wake.findall("t:Actions/t:Exec", NS)
    assert windows_argv(starts.find("t:Arguments", NS).text) == ["/Run", "/TN", "DailySalesDagster"]
    keep = windows_argv(awake.find("t:Arguments", NS).text)
    assert keep[0] == AWKWARD_ROOT + r"\scripts\keep_awake.py" and keep[1] == "--minutes"
    assert dt.timedelta(minutes=float(keep[2])) >= dt.timedelta(minutes=30)  # past the 07:30 deadline


def test_the_windows_argv_splitter_follows_the_runtime_rules():
    assert windows_argv(r'"a b\" c" d') == ['a b" c', "d"]
    assert windows_argv(r'"C:\x y\\" z') == ["C:\\x y\\", "z"]
    assert windows_argv("a   b") == ["a", "b"]
    assert ZoneInfo("Europe/London")  # tzdata present for the wake-time conversion
