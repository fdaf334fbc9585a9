"""The Task Scheduler tasks that keep the pipeline's Dagster server running on the Windows desktop, as XML.

scripts/register_task.ps1 runs this to write the task definitions, then registers them with
`Register-ScheduledTask -Xml`; the settings come from scripts/task_settings.json (one data
block, also read by the tests and by scripts/doctor.py). Two tasks:

- `DailySalesDagster` runs `.venv\\Scripts\\python.exe scripts\\supervisor.py` directly (no cmd.exe,
  so a repo path with spaces, `(` or `&` needs no shell quoting) at start-up, at logon and every
  5 minutes; "IgnoreNew" makes the 5-minute trigger a restart for a supervisor that died and a
  no-op while it runs. Normal priority, no time limit, a logon type with network credentials.
- `DailySalesDagster-Wake` wakes the PC a few minutes before the morning refresh (pipeline.yaml),
  starts the server task if it is not running, and keeps the PC awake while the refresh runs.

    python scripts/windows_task.py --user DOMAIN\\user --out-dir DIR [--interactive] [--print]
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]

from pipeline_common.script_support import ArgumentParser  # noqa: E402

SETTINGS_FILE = REPO_ROOT / "scripts" / "task_settings.json"
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
SCHTASKS = r"C:\Windows\System32\schtasks.exe"


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


def server_task_xml(settings: dict[str, Any], repo_root: str, user: str, interactive: bool = False,
                    now: dt.datetime | None = None) -> str:
    logon = settings["interactive_logon_type"] if interactive else settings["logon_type"]
    task, triggers = _task(f"{settings['description']} ({repo_root})", user, logon, settings["run_level"])
    if not interactive:  # a start-up trigger needs a task that runs with nobody logged on
        _element(_element(triggers, "BootTrigger"), "Delay", settings["boot_delay"])
    _element(_element(triggers, "LogonTrigger"), "UserId", user)
    repeat = _element(triggers, "TimeTrigger")
    repetition = _element(repeat, "Repetition")
    _element(repetition, "Interval", settings["restart_every"])  # no Duration: for ever
    _element(repetition, "StopAtDurationEnd", False)
    _element(repeat, "StartBoundary", (now or dt.datetime.now()).replace(microsecond=0, second=0).isoformat())
    _settings(task, settings, wake=False, time_limit=settings["execution_time_limit"], restart=True)
    actions = _element(task, "Actions", Context="Author")
    python = windows_path(repo_root, ".venv", "Scripts", "python.exe")
    _exec(actions, python, command_line(windows_path(repo_root, "scripts", "supervisor.py")), repo_root)
    return ET.tostring(task, encoding="unicode")


def wake_task_xml(settings: dict[str, Any], repo_root: str, user: str, wake_at: dt.datetime,
                  interactive: bool = False) -> str:
    wake = settings["wake"]
    logon = settings["interactive_logon_type"] if interactive else settings["logon_type"]
    description = (f"Wakes the PC at {wake_at:%H:%M}, {wake['minutes_before']} min before {wake['before_job']}, "
                   f"starts {settings['task_name']} and keeps the PC awake {wake['keep_awake_minutes']} min")
    task, triggers = _task(description, user, logon, settings["run_level"])
    daily = _element(triggers, "CalendarTrigger")
    _element(daily, "StartBoundary", wake_at.replace(tzinfo=None, microsecond=0).isoformat())
    _element(_element(daily, "ScheduleByDay"), "DaysInterval", 1)
    limit = f"PT{wake['keep_awake_minutes'] + 30}M"
    _settings(task, settings, wake=True, time_limit=limit, restart=False)
    actions = _element(task, "Actions", Context="Author")
    _exec(actions, SCHTASKS, command_line("/Run", "/TN", settings["task_name"]))
    python = windows_path(repo_root, ".venv", "Scripts", "python.exe")
    _exec(actions, python,
          command_line(windows_path(repo_root, "scripts", "keep_awake.py"), "--minutes", str(wake["keep_awake_minutes"])),
          repo_root)
    return ET.tostring(task, encoding="unicode")


def build(settings: dict[str, Any], repo_root: str, user: str, interactive: bool,
          task_name: str | None = None, local_tz: dt.tzinfo | None = None) -> list[dict[str, str]]:
    """The tasks to register: name, XML and a one-line summary each."""
    if task_name:
        settings = {**settings, "task_name": task_name}
    wake_at = wake_time(settings, local_tz)
    wake_name = settings["task_name"] + settings["wake"]["task_name_suffix"]
    return [
        {"name": settings["task_name"], "xml": server_task_xml(settings, repo_root, user, interactive),
         "summary": ("at logon" if interactive else "at start-up and logon")
         + f", restarted within {settings['restart_every'][2:].lower()} if it stops, normal priority"},
        {"name": wake_name, "xml": wake_task_xml(settings, repo_root, user, wake_at, interactive),
         "summary": f"wakes the PC daily at {wake_at:%H:%M} for the morning refresh"},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", required=True, help=r"DOMAIN\user the tasks run as")
    parser.add_argument("--task-name", default=None, help="server task name (default from task_settings.json)")
    parser.add_argument("--interactive", action="store_true",
                        help="run only while the user is logged on (no stored password; no start-up trigger)")
    parser.add_argument("--repo-root", default=None, help="the repo folder as Windows sees it (default: this repo)")
    parser.add_argument("--out-dir", type=Path, help="write <task>.xml files and tasks.json here")
    parser.add_argument("--print", action="store_true", help="print the XML instead")
    args = parser.parse_args(argv)
    repo_root = args.repo_root or str(REPO_ROOT)
    tasks = build(load_settings(), repo_root, args.user, args.interactive, args.task_name)
    if args.print or not args.out_dir:
        for task in tasks:
            print(f"<!-- {task['name']}: {task['summary']} -->\n{task['xml']}")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for task in tasks:
        path = args.out_dir / f"{task['name']}.xml"
        path.write_text(task["xml"], encoding="utf-8")
        index.append({"name": task["name"], "xml": str(path), "summary": task["summary"]})
    (args.out_dir / "tasks.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    raise SystemExit(run_main(main))
