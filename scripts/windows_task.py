"""The Task Scheduler tasks that keep the pipeline's Dagster server running on the Windows desktop, as XML.

scripts/register_task.ps1 runs this to write the task definitions, then registers them with
`Register-ScheduledTask -Xml`; scripts/register_task.bat (no PowerShell: for a Group Policy
execution policy) runs it with `--register`, which hands the same XML to
`%SystemRoot%\\System32\\schtasks.exe /Create /XML`. The settings come from
scripts/task_settings.json (one data block, also read by the tests and by scripts/doctor.py). Two tasks:

- `DailySalesDagster` runs `.venv\\Scripts\\python.exe scripts\\supervisor.py` directly (no cmd.exe,
  so a repo path with spaces, `(` or `&` needs no shell quoting) at start-up (only when registered
  by an administrator: a boot trigger needs one), at logon and every 5 minutes; "IgnoreNew" makes
  the 5-minute trigger a restart for a supervisor that died and a no-op while it runs. Normal
  priority, no time limit. Logon: `Password` (stored password: network credentials for a proxy or
  a UNC DATA_DIR), `S4U` (no stored password, no network credentials, runs logged on or not) or
  `Interactive` (only while the user is logged on; `pythonw.exe`, so no console window to close).
- `DailySalesDagster-Wake` wakes the PC a few minutes before the morning refresh (pipeline.yaml),
  starts the server task if it is not running, and keeps the PC awake while the refresh runs.

    python scripts/windows_task.py --user DOMAIN\\user --out-dir DIR [--logon Password|S4U|Interactive]
        [--no-boot-trigger] [--print]
    python scripts/windows_task.py --register [--user DOMAIN\\user] [--logon ...]   (Windows)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]

from pipeline_common.script_support import ArgumentParser  # noqa: E402

SETTINGS_FILE = REPO_ROOT / "scripts" / "task_settings.json"
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
SCHTASKS = r"%SystemRoot%\System32\schtasks.exe"
"""Task Scheduler expands %SystemRoot% in an action: Windows need not live on C:."""
LOGONS = {"Password": "Password", "S4U": "S4U", "Interactive": "InteractiveToken"}
"""--logon choice -> the task XML's LogonType."""


def schtasks_exe(env: dict[str, str] | None = None) -> str:
    """schtasks.exe from the running Windows' own folder (never a PATH lookup)."""
    root = (env if env is not None else os.environ).get("SystemRoot") or r"C:\Windows"
    return windows_path(root, "System32", "schtasks.exe")


def load_settings(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def windows_path(root: str, *parts: str) -> str:
    """Join with backslashes whatever system builds the XML (the tests run on Linux)."""
    return "\\".join([root.rstrip("\\/"), *parts])


def command_line(*args: str) -> str:
    """Arguments quoted for CreateProcess (the rules CommandLineToArgvW and the C runtime undo)."""
    return subprocess.list2cmdline(list(args))


def quoted_program(path: str) -> str:
    return f'"{path}"' if " " in path else path


def wake_time(settings: dict[str, Any], local_tz: dt.tzinfo | None = None,
              today: dt.date | None = None) -> dt.datetime:
    """Local wall-clock time of the wake-up: `minutes_before` the morning job's cron time (pipeline.yaml)."""
    from pipeline_common.config import load_pipeline_config

    config = load_pipeline_config()
    wake = settings["wake"]
    job = next((j for j in config.jobs.scheduled if j.name == wake["before_job"]), None)
    if job is None:
        raise SystemExit(f"task_settings.json: wake.before_job {wake['before_job']!r} is not a job in pipeline.yaml")
    minute, hour = (int(field) for field in job.cron.split()[:2])
    london = ZoneInfo(config.timezone)
    day = today or dt.datetime.now(london).date()
    start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=london) - dt.timedelta(minutes=wake["minutes_before"])
    return start.astimezone(local_tz) if local_tz is not None else start.astimezone()


def _element(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = str(text).lower() if isinstance(text, bool) else str(text)
    return node


def _task(description: str, user: str, logon_type: str, run_level: str) -> tuple[ET.Element, ET.Element]:
    task = ET.Element("Task", {"version": "1.2", "xmlns": TASK_NS})
    info = _element(task, "RegistrationInfo")
    _element(info, "Description", description)
    _element(info, "Author", user)
    triggers = _element(task, "Triggers")
    principal = _element(_element(task, "Principals"), "Principal", id="Author")
    _element(principal, "UserId", user)
    _element(principal, "LogonType", logon_type)
    _element(principal, "RunLevel", run_level)
    return task, triggers


def _settings(task: ET.Element, settings: dict[str, Any], *, wake: bool, time_limit: str,
              restart: bool) -> None:
    node = _element(task, "Settings")
    _element(node, "MultipleInstancesPolicy", settings["multiple_instances"])
    _element(node, "DisallowStartIfOnBatteries", False)
    _element(node, "StopIfGoingOnBatteries", False)
    _element(node, "AllowHardTerminate", True)
    _element(node, "StartWhenAvailable", True)
    _element(node, "RunOnlyIfNetworkAvailable", False)
    idle = _element(node, "IdleSettings")
    _element(idle, "StopOnIdleEnd", False)
    _element(idle, "RestartOnIdle", False)
    _element(node, "AllowStartOnDemand", True)
    _element(node, "Enabled", True)
    _element(node, "Hidden", False)
    _element(node, "RunOnlyIfIdle", False)
    _element(node, "WakeToRun", wake)
    _element(node, "ExecutionTimeLimit", time_limit)
    _element(node, "Priority", settings["priority"])
    if restart:
        again = _element(node, "RestartOnFailure")
        _element(again, "Interval", settings["restart_on_failure"]["interval"])
        _element(again, "Count", settings["restart_on_failure"]["count"])


def _exec(actions: ET.Element, command: str, arguments: str, working_dir: str | None = None) -> None:
    node = _element(actions, "Exec")
    _element(node, "Command", quoted_program(command))
    _element(node, "Arguments", arguments)
    if working_dir:
        _element(node, "WorkingDirectory", working_dir)


def _logon_type(settings: dict[str, Any], logon: str) -> str:
    return settings["interactive_logon_type"] if logon == "Interactive" else LOGONS[logon]


def _python(repo_root: str, logon: str) -> str:
    # An interactive task's console window would appear at every logon, and closing it ends the
    # server: pythonw.exe has none (the supervisor then starts its children without one either).
    return windows_path(repo_root, ".venv", "Scripts", "pythonw.exe" if logon == "Interactive" else "python.exe")


def server_task_xml(settings: dict[str, Any], repo_root: str, user: str, logon: str = "Password",
                    now: dt.datetime | None = None, boot_trigger: bool = True) -> str:
    task, triggers = _task(f"{settings['description']} ({repo_root})", user, _logon_type(settings, logon),
                           settings["run_level"])
    # A start-up trigger needs a task that runs with nobody logged on, and an administrator to register it.
    if boot_trigger and logon != "Interactive":
        _element(_element(triggers, "BootTrigger"), "Delay", settings["boot_delay"])
    _element(_element(triggers, "LogonTrigger"), "UserId", user)
    repeat = _element(triggers, "TimeTrigger")
    repetition = _element(repeat, "Repetition")
    _element(repetition, "Interval", settings["restart_every"])  # no Duration: for ever
    _element(repetition, "StopAtDurationEnd", False)
    _element(repeat, "StartBoundary", (now or dt.datetime.now()).replace(microsecond=0, second=0).isoformat())
    _settings(task, settings, wake=False, time_limit=settings["execution_time_limit"], restart=True)
    actions = _element(task, "Actions", Context="Author")
    _exec(actions, _python(repo_root, logon), command_line(windows_path(repo_root, "scripts", "supervisor.py")),
          repo_root)
    return ET.tostring(task, encoding="unicode")


def wake_task_xml(settings: dict[str, Any], repo_root: str, user: str, wake_at: dt.datetime,
                  logon: str = "Password") -> str:
    wake = settings["wake"]
    description = (f"Wakes the PC at {wake_at:%H:%M}, {wake['minutes_before']} min before {wake['before_job']}, "
                   f"starts {settings['task_name']} and keeps the PC awake {wake['keep_awake_minutes']} min")
    task, triggers = _task(description, user, _logon_type(settings, logon), settings["run_level"])
    daily = _element(triggers, "CalendarTrigger")
    _element(daily, "StartBoundary", wake_at.replace(tzinfo=None, microsecond=0).isoformat())
    _element(_element(daily, "ScheduleByDay"), "DaysInterval", 1)
    limit = f"PT{wake['keep_awake_minutes'] + 30}M"
    _settings(task, settings, wake=True, time_limit=limit, restart=False)
    actions = _element(task, "Actions", Context="Author")
    _exec(actions, SCHTASKS, command_line("/Run", "/TN", settings["task_name"]))
    _exec(actions, _python(repo_root, logon),
          command_line(windows_path(repo_root, "scripts", "keep_awake.py"), "--minutes", str(wake["keep_awake_minutes"])),
          repo_root)
    return ET.tostring(task, encoding="unicode")


def build(settings: dict[str, Any], repo_root: str, user: str, logon: str | bool = "Password",
          task_name: str | None = None, local_tz: dt.tzinfo | None = None,
          boot_trigger: bool = True) -> list[dict[str, str]]:
    """The tasks to register: name, XML, logon and a one-line summary each."""
    if isinstance(logon, bool):  # the former `interactive` flag
        logon = "Interactive" if logon else "Password"
    if task_name:
        settings = {**settings, "task_name": task_name}
    wake_at = wake_time(settings, local_tz)
    wake_name = settings["task_name"] + settings["wake"]["task_name_suffix"]
    boot = boot_trigger and logon != "Interactive"
    return [
        {"name": settings["task_name"], "logon": logon,
         "xml": server_task_xml(settings, repo_root, user, logon, boot_trigger=boot),
         "summary": ("at start-up and logon" if boot else "at logon")
         + f" as {user} ({logon} logon), restarted within {settings['restart_every'][2:].lower()} if it stops,"
         " normal priority"},
        {"name": wake_name, "logon": logon, "xml": wake_task_xml(settings, repo_root, user, wake_at, logon),
         "summary": f"wakes the PC daily at {wake_at:%H:%M} for the morning refresh"},
    ]


def task_file_bytes(xml: str) -> bytes:
    """The XML as schtasks /Create /XML reads it without complaint: UTF-16 with a byte-order mark."""
    return ('<?xml version="1.0" encoding="UTF-16"?>\r\n' + xml).encode("utf-16")


def schtasks_create_commands(tasks: list[dict[str, str]], files: dict[str, str], user: str,
                             env: dict[str, str] | None = None) -> list[list[str]]:
    """The schtasks.exe command lines that register the tasks. Password: `/RU user /RP *` (schtasks asks for
    the password on the console; it is never on a command line); S4U and Interactive: the XML's principal."""
    commands = []
    for task in tasks:
        command = [schtasks_exe(env), "/Create", "/TN", task["name"], "/XML", files[task["name"]], "/F"]
        if task["logon"] == "Password":
            command += ["/RU", user, "/RP", "*"]
        commands.append(command)
    return commands


def console_user() -> str | None:  # pragma: no cover - Windows only
    """DOMAIN\\user signed in at the console: the analyst, also when an admin runs this elevated."""
    import ctypes
    from ctypes import wintypes

    wts = ctypes.windll.wtsapi32
    session = ctypes.windll.kernel32.WTSGetActiveConsoleSessionId()
    names = []
    for info_class in (7, 5):  # WTSDomainName, WTSUserName
        buffer, size = wintypes.LPWSTR(), wintypes.DWORD()
        if not wts.WTSQuerySessionInformationW(None, session, info_class, ctypes.byref(buffer), ctypes.byref(size)):
            return None
        names.append(buffer.value)
        wts.WTSFreeMemory(buffer)
    return "\\".join(names) if names[1] else None


def is_elevated() -> bool:  # pragma: no cover - Windows only
    import ctypes

    return bool(ctypes.windll.shell32.IsUserAnAdmin())


def register(tasks: list[dict[str, str]], user: str, run=subprocess.run) -> int:
    """Register through schtasks.exe (no PowerShell); the temporary XML files are removed whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="dailysales-task-"))
    try:
        files = {}
        for task in tasks:
            path = folder / f"{task['name']}.xml"
            path.write_bytes(task_file_bytes(task["xml"]))
            files[task["name"]] = str(path)
        for task, command in zip(tasks, schtasks_create_commands(tasks, files, user)):
            result = run(command)  # the console stays attached: /RP * asks for the password there
            if result.returncode != 0:
                print(f"schtasks could not register {task['name']} (exit {result.returncode}); see its message above. "
                      "A password prompt refused: wrong password; 'Access is denied': only an administrator may "
                      "register a task for another user or with a start-up trigger.")
                return 78
            print(f"Registered task '{task['name']}': {task['summary']}.")
    finally:
        for path in folder.glob("*"):
            path.unlink(missing_ok=True)
        folder.rmdir()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", default=None,
                        help=r"DOMAIN\user the tasks run as (default: the user signed in at the console)")
    parser.add_argument("--task-name", default=None, help="server task name (default from task_settings.json)")
    parser.add_argument("--logon", choices=sorted(LOGONS), default=None,
                        help="Password (default: stored password, network credentials), S4U (no stored password, "
                             "local files only) or Interactive (only while the user is logged on, no window)")
    parser.add_argument("--interactive", action="store_true", help="the same as --logon Interactive")
    parser.add_argument("--no-boot-trigger", action="store_true",
                        help="no start-up trigger (what a standard user may register; --register decides itself)")
    parser.add_argument("--register", action="store_true",
                        help="register the tasks now with schtasks.exe (Windows; what register_task.bat runs)")
    parser.add_argument("--timezone", default=None,
                        help="the PC's IANA time zone for the wake time (default: this machine's local zone)")
    parser.add_argument("--repo-root", default=None, help="the repo folder as Windows sees it (default: this repo)")
    parser.add_argument("--out-dir", type=Path, help="write <task>.xml files and tasks.json here")
    parser.add_argument("--print", action="store_true", help="print the XML instead")
    args = parser.parse_args(argv)
    repo_root = args.repo_root or str(REPO_ROOT)
    logon = args.logon or ("Interactive" if args.interactive else "Password")
    boot = not args.no_boot_trigger
    user = args.user
    if args.register:
        if os.name != "nt":
            parser.error("--register registers Windows Task Scheduler tasks: run it on Windows")
        user = user or console_user() or f"{os.environ.get('USERDOMAIN', '')}\\{os.environ.get('USERNAME', '')}"
        if boot and logon != "Interactive" and not is_elevated():
            print("Not elevated: the tasks get no start-up trigger (only an administrator may add one); the "
                  "server starts at logon and within 5 minutes after. Run this from an elevated prompt to add it.")
            boot = False
    if not user:
        parser.error("--user is required (DOMAIN\\user the tasks run as)")
    local_tz = ZoneInfo(args.timezone) if args.timezone else None
    tasks = build(load_settings(), repo_root, user, logon, args.task_name, local_tz=local_tz, boot_trigger=boot)
    if args.register:
        return register(tasks, user)
    if args.print or not args.out_dir:
        for task in tasks:
            print(f"<!-- {task['name']}: {task['summary']} -->\n{task['xml']}")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for task in tasks:
        path = args.out_dir / f"{task['name']}.xml"
        path.write_text(task["xml"], encoding="utf-8")
        index.append({"name": task["name"], "xml": str(path), "summary": task["summary"], "logon": task["logon"]})
    (args.out_dir / "tasks.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    raise SystemExit(run_main(main))
