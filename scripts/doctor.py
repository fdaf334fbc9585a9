"""Check the pipeline's desktop set-up and say what to fix: the first thing to run when something looks wrong.

Each check prints one line, `OK`, `PROBLEM` (with `fix:` and what to do), `WARNING` (with `fix:`;
not counted as a problem) or `SKIPPED` (with the reason, e.g. a Windows-only check on Linux). Exit 0 when nothing is a PROBLEM, else 1. Secrets
(keys, tokens, passwords, webhook URLs) are never printed: every line goes through the project's
scrubber (pipeline_common/secrets.py) before it is shown.

    python scripts/doctor.py [--port 3000] [--dagster-home DIR] [--check NAME ...] [--min-free-gb 2]
    scripts\\doctor.bat  (Windows: the same, with the project's venv)

Checks: python, packages, manifest, data_dir, warehouse, task, wake_timers, long_paths, locations,
port, server, schedules, clock, timezone, azure, sharepoint, tableau, slack.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]

IS_WINDOWS = os.name == "nt"
VENV = REPO_ROOT / ".venv"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
DBT_DIR = REPO_ROOT / "dbt"
CONFIG_FILE = REPO_ROOT / "pipeline.yaml"
DEFAULT_HOME = REPO_ROOT / "dagster_home"
WINDOWS_MAX_PATH = 259  # MAX_PATH (260) less the terminating NUL
# dagster-dbt writes each run's files under dbt's target folder/<op name>-<8 hex>/run/<package>/...
DBT_RUN_FOLDER = "warehouse_dbt_models-0123abcd/run"
DAEMON_STALE_SECONDS = 300
CLOCK_TOLERANCE_SECONDS = 120
HTTP_TIMEOUT_SECONDS = 10


@dataclass
class Result:
    status: str  # OK, PROBLEM, WARNING (said, not counted as a problem), SKIPPED
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<8} {self.name}: {scrub(self.detail)}"
        if self.status in ("PROBLEM", "WARNING") and self.fix:
            text += f" | fix: {scrub(self.fix)}"
        return text


def ok(name: str, detail: str) -> Result:
    return Result("OK", name, detail)


def problem(name: str, detail: str, fix: str) -> Result:
    return Result("PROBLEM", name, detail, fix)


def skipped(name: str, reason: str) -> Result:
    return Result("SKIPPED", name, reason)


def warning(name: str, detail: str, fix: str) -> Result:
    return Result("WARNING", name, detail, fix)


def scrub(text: str) -> str:
    """The project's one secret scrubber (values of secret variables in every encoding, and patterns)."""
    from pipeline_common.secrets import scrub as scrub_secrets
    from pipeline_common.settings import load_dotenv_once

    load_dotenv_once()  # secrets that only .env holds are masked too
    return scrub_secrets(text)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


# --- the checks -----------------------------------------------------------------------------------


def check_python(options) -> Result:
    version = ".".join(map(str, sys.version_info[:3]))
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if sys.version_info < (3, 11):
        return problem("python", f"Python {version} is too old (3.11+ needed)", "install Python 3.11, then scripts\\setup.bat")
    if not in_venv:
        return problem("python", f"running {sys.executable}, not the project's venv {VENV}",
                       "run scripts\\setup.bat once, then use doctor.bat (or .venv\\Scripts\\python.exe)")
    return ok("python", f"Python {version} from {VENV}")


def pinned_requirements(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s,]+)", line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def check_packages(options) -> Result:
    from importlib import metadata

    pins = pinned_requirements(REQUIREMENTS)
    wrong = []
    for name, wanted in pins.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing (pinned {wanted})")
            continue
        if have != wanted:
            wrong.append(f"{name} {have} installed, {wanted} pinned")
    if wrong:
        more = f" and {len(wrong) - 4} more" if len(wrong) > 4 else ""
        return problem("packages", "; ".join(wrong[:4]) + more,
                       f"scripts\\setup.bat (or: python -m pip install -r {REQUIREMENTS.name})")
    return ok("packages", f"all {len(pins)} pinned packages of {REQUIREMENTS.name} installed")


def _dbt_inputs() -> Iterable[Path]:
    skip = {"target", "logs", "dbt_packages"}
    # DBT_TARGET_PATH may put dbt's output inside dbt/ under another name: its files are no inputs either
    target = Path(os.path.normpath(manifest_path().parent))
    for path in DBT_DIR.rglob("*"):
        if path.is_file() and not skip.intersection(path.relative_to(DBT_DIR).parts) \
                and not path.is_relative_to(target):
            yield path
    yield CONFIG_FILE


def manifest_path() -> Path:
    """The manifest the code location loads: in dbt's target folder (DBT_TARGET_PATH moves it, as for the code location)."""
    from pipeline_common.settings import dbt_target_dir

    return dbt_target_dir(DBT_DIR) / "manifest.json"


def check_manifest(options) -> Result:
    fix = "python scripts\\prepare_dbt.py"
    manifest = manifest_path()
    if not manifest.is_file():
        return problem("manifest", f"dbt manifest missing at {manifest}", fix)
    built = manifest.stat().st_mtime
    changed = {p: p.stat().st_mtime for p in _dbt_inputs() if p.is_file()}  # one stat per input
    newer = sorted((p for p, mtime in changed.items() if mtime > built + 1), key=changed.__getitem__, reverse=True)
    if newer:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in newer[:3])
        return problem("manifest", f"dbt manifest is older than {names}: Dagster would load stale models", fix)
    return ok("manifest", f"dbt manifest up to date with dbt/ and {CONFIG_FILE.name}")


def check_data_dir(options) -> Result:
    from pipeline_common.settings import data_dir

    folder = data_dir()
    fix_where = "set DATA_DIR in .env to a folder this user can write"
    if not folder.is_dir():
        return problem("data_dir", f"DATA_DIR {folder} does not exist", f"create it, or {fix_where}")
    probe = folder / f".doctor-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        return problem("data_dir", f"cannot write to DATA_DIR {folder}: {exc.strerror or exc}", fix_where)
    free_gb = shutil.disk_usage(folder).free / 1e9
    if free_gb < options.min_free_gb:
        return problem("data_dir", f"only {free_gb:.1f} GB free on the disk of {folder}",
                       f"free space (at least {options.min_free_gb:g} GB), or move DATA_DIR to a larger disk")
    return ok("data_dir", f"{folder} writable, {free_gb:.1f} GB free")


def check_warehouse(options) -> Result:
    import duckdb

    from pipeline_common.settings import duckdb_path
    from pipeline_common.warehouse_lock import is_lock_error, lock_holder

    path = duckdb_path()
    if not path.is_file():
        return problem("warehouse", f"no warehouse at {path}",
                       "run the flow once (Dagster: daily_sales_flow_job, or python scripts\\run_flow.py)")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database()"
            ).fetchone()[0]
    except duckdb.Error as exc:
        if is_lock_error(exc):
            holder = lock_holder(str(exc)) or "another process (DuckDB did not say which)"
            return problem("warehouse", f"{path} is locked by {holder}",
                           "if a dbt build is running, wait for it; otherwise close that program")
        return problem("warehouse", f"cannot open {path}: {_short(exc)}",
                       "restore the newest copy from warehouse\\backup (docs/operations.md) or rebuild with the flow")
    return ok("warehouse", f"{path} opens read-only ({tables} tables)")


def schtasks_exe() -> str:
    """schtasks.exe of the running Windows (never a PATH lookup; Windows need not be on C:)."""
    return str(Path(os.environ.get("SystemRoot") or r"C:\Windows") / "System32" / "schtasks.exe")


def decode_console_output(raw: bytes, oem_codepage: int | None) -> str:
    """Text a Windows console tool wrote to a pipe: UTF-16 when it says so (BOM, or NULs between
    ASCII letters), UTF-8 when it decodes as such, else the console's OEM code page (cp850, cp437 ...),
    which is what schtasks.exe and powercfg.exe write when redirected."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    if len(raw) >= 4 and raw[1:4:2] == b"\x00\x00" and raw[0:3:2] != b"\x00\x00":
        return raw.decode("utf-16-le")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(f"cp{oem_codepage or 437}", errors="replace")


def _oem_codepage() -> int | None:  # pragma: no cover - Windows only
    import ctypes

    return ctypes.windll.kernel32.GetOEMCP() if IS_WINDOWS else None


def _console_tool(command: list[str]) -> str | None:  # pragma: no cover - Windows only
    result = subprocess.run(command, capture_output=True, timeout=30)
    if result.returncode != 0:
        return None
    return decode_console_output(result.stdout, _oem_codepage())


def _query_task_xml(name: str) -> str | None:  # pragma: no cover - Windows only
    text = _console_tool([schtasks_exe(), "/Query", "/TN", name, "/XML"])
    return text[text.index("<"):] if text and "<" in text else None


# LastTaskResult of the server task: (fine?, meaning, fix). Task Scheduler reports HRESULTs; schtasks
# prints them in decimal, signed or not, Get-ScheduledTaskInfo in decimal, the UI in hex.
TASK_RESULTS: dict[int, tuple[bool, str, str]] = {
    0x0: (True, "the last run ended normally", ""),
    0x41301: (True, "running now", ""),
    0x41303: (True, "has not run yet", ""),
    0x41306: (True, "the last run was stopped by a user (Stop/End task)", ""),
    0xC000013A: (True, "the last run was stopped (Ctrl+C, Stop-ScheduledTask or pause_pipeline)", ""),
    0x8004131F: (True, "a start was skipped because the server was already running", ""),
    0x8007052E: (False, "logon failure: unknown user name or bad password (the stored password is out of date, "
                 "e.g. after a password change; every start fails and can lock the account)",
                 "store the new password at once: scripts\\register_task.bat (or schtasks /Change /TN {task} /RP *), "
                 "or register with -Logon S4U when no network credentials are needed"),
    0x80070569: (False, "the user has not been granted the requested logon type: the \"Log on as a batch job\" "
                 "right is missing for {user}",
                 "ask IT to grant {user} \"Log on as a batch job\" (secpol.msc > Local Policies > User Rights "
                 "Assignment, or the domain GPO), or register with -Logon Interactive"),
    0x80070532: (False, "the password of {user} has expired", "change it, then store it: scripts\\register_task.bat"),
    0x80070533: (False, "the account {user} is disabled", "ask IT to enable it, or register for another user"),
    0x80070775: (False, "the account {user} is locked out (often: a stale stored password tried again and again)",
                 "ask IT to unlock it, then store the current password: scripts\\register_task.bat"),
    0x800704DD: (False, "the user was not logged on (an Interactive task runs only while {user} is)",
                 "sign in, or register with -Logon Password or S4U to run logged on or not"),
    0x80070002: (False, "the task's program was not found (the repo moved or .venv was deleted)",
                 "run scripts\\setup.bat, then register again from the repo's folder"),
    0x800710E0: (False, "Task Scheduler refused to start it (disabled, or a condition / policy forbids it)",
                 "scripts\\resume_pipeline.bat enables it; else see the task's History tab"),
}


def last_result_meaning(code: int, task: str, user: str) -> tuple[bool, str, str]:
    """What a task's last result means, with the fix."""
    code &= 0xFFFFFFFF
    if code in TASK_RESULTS:
        fine, meaning, fix = TASK_RESULTS[code]
        return fine, meaning.format(task=task, user=user), fix.format(task=task, user=user)
    if 0 < code < 256:
        return False, f"the supervisor exited with code {code}", ("see logs\\supervisor.log (74: the Dagster home or the "
                                                                 "log folder cannot be written; 75: dagster dev kept "
                                                                 "exiting, --max-restarts; 78: a configuration error)")
    return False, f"Task Scheduler error 0x{code:08X}", "see the task's History tab in taskschd.msc"


def parse_last_result(field: str) -> int | None:
    """schtasks /V /FO CSV's Last Result: '0', '267011', '-2147023570' or '0x8007052E'."""
    field = field.strip().strip('"')
    try:
        return int(field, 16) if field.lower().startswith("0x") else int(field)
    except ValueError:
        return None


def task_csv_fields(text: str) -> list[str] | None:
    """The first row of `schtasks /Query /TN X /V /FO CSV /NH` (headers are localized; positions are not)."""
    import csv
    import io

    rows = [row for row in csv.reader(io.StringIO(text)) if len(row) > 14]
    return rows[0] if rows else None


SCHTASKS_LAST_RESULT, SCHTASKS_RUN_AS = 6, 14


def wake_timer_indices(text: str) -> tuple[int, int] | None:
    """AC and DC "Allow wake timers" from `powercfg /query SCHEME_CURRENT SUB_SLEEP RTCWAKE` (localized
    labels; the two current values are the last two lines that end in a 0x... index)."""
    values = re.findall(r"0x([0-9a-fA-F]{8})\s*$", text, flags=re.M)
    return (int(values[-2], 16), int(values[-1], 16)) if len(values) >= 2 else None


WAKE_TIMER_SETTING = {0: "Disable", 1: "Enable", 2: "Important Wake Timers Only"}


def wake_timer_result(indices: tuple[int, int] | None) -> Result:
    if indices is None:
        return skipped("wake_timers", "powercfg did not report \"Allow wake timers\" (managed power plan?)")
    ac, dc = indices
    if ac == 1:
        note = "" if dc == 1 else f" (on battery: {WAKE_TIMER_SETTING.get(dc, dc)})"
        return ok("wake_timers", f"Allow wake timers is enabled{note}: the wake task can wake the PC")
    return problem("wake_timers",
                   f"Allow wake timers is '{WAKE_TIMER_SETTING.get(ac, ac)}' on mains power: the wake task cannot "
                   "wake the PC for the 07:15 refresh (Task Scheduler timers are not 'important' ones)",
                   "Control Panel > Power Options > Change plan settings > Change advanced power settings > Sleep > "
                   "Allow wake timers: Enable (or: powercfg /setacvalueindex SCHEME_CURRENT SUB_SLEEP RTCWAKE 1 "
                   "and powercfg /setactive SCHEME_CURRENT)")


def check_wake_timers(options) -> Result:
    if not IS_WINDOWS:
        return skipped("wake_timers", "Windows only (the power plan's Allow wake timers)")
    powercfg = str(Path(os.environ.get("SystemRoot") or r"C:\Windows") / "System32" / "powercfg.exe")
    text = _console_tool([powercfg, "/query", "SCHEME_CURRENT", "SUB_SLEEP", "RTCWAKE"])
    return wake_timer_result(wake_timer_indices(text or ""))


def task_user_problem(registered: str | None, me: set[str]) -> str | None:
    """The task must run as the person who uses the PC, or its logon trigger never fires for them."""
    if not registered:
        return None
    wanted = {m.lower() for m in me if m}
    name = registered.lower()
    if name in wanted or name.split("\\")[-1] in {m.split("\\")[-1] for m in wanted if not m.startswith("s-1-")}:
        return None
    return (f"the task runs as {registered}, not as you ({', '.join(sorted(m for m in me if m and not m.startswith('S-1-')))}): "
            "its logon trigger never fires for you (registered by an admin for themselves?)")


def _me() -> set[str]:  # pragma: no cover - Windows only
    names = {f"{os.environ.get('USERDOMAIN', '')}\\{os.environ.get('USERNAME', '')}", os.environ.get("USERNAME", "")}
    whoami = _console_tool([str(Path(os.environ.get("SystemRoot") or r"C:\Windows") / "System32" / "whoami.exe"),
                            "/user", "/fo", "csv", "/nh"])
    if whoami:
        fields = [f.strip('"') for f in whoami.strip().split('","')]
        names |= {f.strip('"') for f in fields}
    return names


def task_problems(server_xml: str | None, wake_xml: str | None, settings: dict) -> list[str]:
    """What differs between the registered tasks and scripts/task_settings.json (empty: all as registered)."""
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    if server_xml is None:
        return [f"task {settings['task_name']} is not registered"]
    task = ET.fromstring(server_xml)

    def value(node: ET.Element, path: str) -> str | None:
        found = node.find(path, ns)
        return None if found is None else (found.text or "").strip()

    issues = []
    if value(task, "t:Settings/t:Enabled") == "false":
        issues.append("the task is disabled")
    if value(task, "t:Settings/t:Priority") != str(settings["priority"]):
        issues.append(f"priority {value(task, 't:Settings/t:Priority') or 7} (below normal), expected {settings['priority']}")
    logon = value(task, "t:Principals/t:Principal/t:LogonType")
    if logon not in (settings["logon_type"], settings["interactive_logon_type"], "S4U"):
        issues.append(f"logon type {logon} is none of Password, S4U, InteractiveToken")
    if value(task, "t:Settings/t:MultipleInstancesPolicy") != settings["multiple_instances"]:
        issues.append("a second start would not be ignored (MultipleInstancesPolicy)")
    if value(task, "t:Triggers/t:TimeTrigger/t:Repetition/t:Interval") != settings["restart_every"]:
        issues.append("no repeating trigger restarts the server when it stops")
    command = (value(task, "t:Actions/t:Exec/t:Command") or "").strip('"')
    program = "pythonw.exe" if logon == settings["interactive_logon_type"] else "python.exe"
    expected = str(VENV / "Scripts" / program)
    if os.path.normcase(command.replace("\\", "/")) != os.path.normcase(expected.replace("\\", "/")):
        issues.append(f"it runs {command or '?'}, not {expected} (registered from another folder?)")
    if wake_xml is None:
        issues.append(f"wake task {settings['task_name']}{settings['wake']['task_name_suffix']} is not registered")
    elif value(ET.fromstring(wake_xml), "t:Settings/t:WakeToRun") != "true":
        issues.append("the wake task does not wake the PC")
    return issues


def check_task(options) -> Result:
    if not IS_WINDOWS:
        return skipped("task", "Windows only (Task Scheduler); on Linux run scripts/start.sh under your service manager")
    from scripts.windows_task import load_settings

    settings = load_settings()
    name = settings["task_name"]
    server_xml = _query_task_xml(name)
    details = _console_tool([schtasks_exe(), "/Query", "/TN", name, "/V", "/FO", "CSV", "/NH"])
    return task_result(server_xml, _query_task_xml(name + settings["wake"]["task_name_suffix"]), settings,
                       task_csv_fields(details or ""), _me())


def task_result(server_xml: str | None, wake_xml: str | None, settings: dict, csv_fields: list[str] | None,
                me: set[str]) -> Result:
    """The task check from what schtasks reports: registration, user, last result."""
    name = settings["task_name"]
    register = ("scripts\\register_task.bat (or powershell -ExecutionPolicy Bypass -File .\\scripts\\register_task.ps1); "
                "an admin adds the start-up trigger by running it elevated")
    issues = task_problems(server_xml, wake_xml, settings)
    if issues:
        return problem("task", "; ".join(issues), register)
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    user_node = ET.fromstring(server_xml).find("t:Principals/t:Principal/t:UserId", ns)
    registered = (user_node.text or "").strip() if user_node is not None else None
    wrong_user = task_user_problem(registered, me)
    if wrong_user:
        return problem("task", wrong_user, "sign in as the analyst and run " + register + " (or an admin: -User DOMAIN\\analyst)")
    code = parse_last_result(csv_fields[SCHTASKS_LAST_RESULT]) if csv_fields else None
    if code is not None:
        fine, meaning, fix = last_result_meaning(code, name, registered or "the task's user")
        if not fine:
            return problem("task", f"{name} is registered, but its last result is 0x{code & 0xFFFFFFFF:08X}: {meaning}", fix)
        return ok("task", f"{name} and its wake task registered as scripts/task_settings.json says, as {registered}; "
                  f"last result: {meaning}")
    return ok("task", f"{name} and its wake task registered as scripts/task_settings.json says, as {registered}")


def _target_text(repo_root: str, manifest: Path) -> str:
    """dbt's target folder (the manifest's) as text: under `repo_root` when it lies in the repo (dbt/target unless
    DBT_TARGET_PATH moves it), else where DBT_TARGET_PATH puts it."""
    target = Path(os.path.normpath(manifest.parent))
    if not target.is_relative_to(DBT_DIR.parent):  # the repo the manifest is looked for in (manifest_path)
        return str(target)
    return f"{repo_root.rstrip(chr(92) + '/')}/{target.relative_to(DBT_DIR.parent).as_posix()}"


def longest_dbt_path(repo_root: str, manifest: Path) -> tuple[int, str]:
    """The longest path dbt will write for a run, as Windows counts it (backslashes, from the drive)."""
    target = _target_text(repo_root, manifest)
    nodes = json.loads(manifest.read_text(encoding="utf-8")).get("nodes", {})
    longest = ""
    for node in nodes.values():
        relative = node.get("original_file_path", "")
        if node.get("resource_type") == "test" and relative.endswith((".yml", ".yaml")):
            relative = f"{relative}/{node.get('path', '')}"  # generic tests sit below their YAML file
        candidate = f"{target}/{DBT_RUN_FOLDER}/{node.get('package_name', '')}/{relative}"
        if len(candidate) > len(longest):
            longest = candidate
    return len(longest), longest.replace("/", "\\")


def _long_paths_enabled() -> bool:  # pragma: no cover - Windows only
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            return winreg.QueryValueEx(key, "LongPathsEnabled")[0] == 1
    except OSError:
        return False


def long_path_result(repo_root: str, manifest: Path, enabled: Callable[[], bool]) -> Result:
    if not manifest.is_file():
        return skipped("long_paths", "no dbt manifest yet to measure the paths dbt writes (see manifest)")
    length, path = longest_dbt_path(repo_root, manifest)
    if length <= WINDOWS_MAX_PATH:
        return ok("long_paths", f"longest dbt path {length} characters (limit {WINDOWS_MAX_PATH + 1})")
    if enabled():
        return ok("long_paths", f"longest dbt path {length} characters; long paths are enabled")
    return problem(
        "long_paths",
        f"dbt will write paths of {length} characters (over Windows' {WINDOWS_MAX_PATH + 1}), e.g. {path}",
        "enable long paths (elevated PowerShell: New-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control"
        "\\FileSystem -Name LongPathsEnabled -Value 1 -PropertyType DWORD -Force; then sign out and in) "
        "or move the repo to a short folder such as C:\\pipelines\\daily-sales",
    )


def check_long_paths(options) -> Result:
    if not IS_WINDOWS:
        return skipped("long_paths", "Windows only (the 260-character path limit)")
    return long_path_result(str(REPO_ROOT), manifest_path(), _long_paths_enabled)


def _listener(port: int):
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        connections = []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn
    return None


def _is_ours(pid: int | None) -> tuple[bool, str]:
    import psutil

    if not pid:
        return False, "a process this user cannot see"
    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline())
        cwd = process.cwd()
    except psutil.Error:
        return False, f"PID {pid}"
    label = f"{process.name()} (PID {pid})"
    ours = "dagster" in command and Path(cwd).resolve() == REPO_ROOT.resolve()
    return ours, label


def check_port(options) -> Result:
    conn = _listener(options.port)
    if conn is None:
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
            if probe.connect_ex(("127.0.0.1", options.port)) != 0:
                return ok("port", f"{options.port} free (the server is not running)")
        return problem("port", f"{options.port} is in use by a process this user cannot see",
                       "find it with: netstat -ano | findstr :" + str(options.port))
    ours, label = _is_ours(conn.pid)
    if ours:
        return ok("port", f"{options.port} held by this pipeline's Dagster, {label}")
    return problem("port", f"{options.port} is held by {label}, not this pipeline's Dagster",
                   f"stop that program, or start the server on another port (start_dagster.bat --port {options.port + 1})")


def check_server(options) -> Result:
    import requests

    url = f"http://127.0.0.1:{options.port}/server_info"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        info = response.json() if response.ok else {}
    except (requests.RequestException, ValueError) as exc:
        return problem("server", f"no answer at http://127.0.0.1:{options.port} ({type(exc).__name__})",
                       "Start-ScheduledTask DailySalesDagster (or double-click start_dagster.bat); see logs\\supervisor.log")
    version = info.get("dagster_webserver_version") or info.get("dagster_version")
    if not version:
        return problem("server", f"http://127.0.0.1:{options.port} answers, but not as Dagster (HTTP {response.status_code})",
                       "another program has the port: see the port check")
    return ok("server", f"Dagster {version} answering at http://127.0.0.1:{options.port}")


def check_schedules(options) -> Result:
    home = Path(options.dagster_home)
    fix_start = "start the server (Start-ScheduledTask DailySalesDagster or start_dagster.bat)"
    if not (home / "dagster.yaml").is_file():
        return problem("schedules", f"Dagster has never run with DAGSTER_HOME={home}", fix_start)
    from dagster import DagsterInstance
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import InstigatorStatus

    with DagsterInstance.from_config(str(home)) as instance:
        beats = instance.get_daemon_heartbeats()
        beat = beats.get("SCHEDULER")
        age = time.time() - beat.timestamp if beat else None
        if age is None or age > DAEMON_STALE_SECONDS:
            when = "never" if age is None else f"{age / 60:.0f} min ago"
            return problem("schedules", f"the scheduler daemon is not running (last heartbeat {when}): no schedule ticks",
                           fix_start + "; if it runs, look for 'daemon' in logs\\dagster.log")
        from pipeline_common.config import business_zone

        zone = business_zone()
        ticks = []
        failed = []
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE):
            if state.status == InstigatorStatus.STOPPED:
                continue
            latest = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            if not latest:
                continue
            tick = latest[0]
            moment = dt.datetime.fromtimestamp(tick.timestamp, zone)
            ticks.append(f"{state.instigator_name} {moment:%d %b %H:%M} {tick.status.value}")
            if tick.status.value == "FAILURE":
                error = (tick.error.message.splitlines() or ["?"])[0] if tick.error else "?"
                failed.append(f"{state.instigator_name} at {moment:%d %b %H:%M}: {error}")
    if failed:
        return problem("schedules", "last tick failed: " + "; ".join(failed),
                       "open the schedule in the UI (Automation) for the error, fix it, then launch the job by hand")
    return ok("schedules", "scheduler running; last ticks: " + ("; ".join(ticks) if ticks else "none yet (none due since start)"))


def _utc_offsets(zone: dt.tzinfo | None, year: int) -> tuple[dt.timedelta | None, ...]:
    moments = (dt.datetime(year, 1, 15, 12), dt.datetime(year, 7, 15, 12))
    if zone is None:  # this machine's local zone
        return tuple(m.astimezone().utcoffset() for m in moments)
    return tuple(m.replace(tzinfo=zone).utcoffset() for m in moments)


def check_timezone(options) -> Result:
    from pipeline_common.config import load_pipeline_config

    name = load_pipeline_config().timezone
    year = dt.date.today().year
    if _utc_offsets(None, year) == _utc_offsets(ZoneInfo(name), year):
        return ok("timezone", f"this PC keeps {name} time (schedules run on {name} time either way)")
    local = dt.datetime.now().astimezone().tzname()
    if not IS_WINDOWS:  # a server's UTC is normal; there is no wake task whose local time could be wrong
        return ok("timezone", f"this machine keeps {local} time; schedules run on {name} time regardless "
                  "(log times are local)")
    return problem("timezone", f"this PC's time zone ({local}) is not {name}: schedules still run on {name} time, "
                   "but the wake-up task and log times are local",
                   f"set the time zone to {name} (Settings > Time & language), then re-run register_task.ps1")


def _remote_for_clock() -> str | None:
    from pipeline_common.settings import env

    for name in ("TABLEAU_SERVER_URL", "AZURE_STORAGE_ACCOUNT_URL", "SHAREPOINT_SITE_URL"):
        value = env(name)
        if value:
            return value
    return None


def check_clock(options) -> Result:
    import email.utils

    import requests

    remote = _remote_for_clock()
    if remote is None:
        return skipped("clock", "no remote server configured to compare the clock with (TABLEAU_SERVER_URL, ...)")
    try:
        started = time.time()
        response = requests.head(remote, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
        header = response.headers.get("Date")
    except requests.RequestException as exc:
        return skipped("clock", f"could not reach {urllib.parse.urlsplit(remote).netloc} ({type(exc).__name__})")
    if not header:
        return skipped("clock", f"{urllib.parse.urlsplit(remote).netloc} sent no Date header")
    remote_time = email.utils.parsedate_to_datetime(header).timestamp()
    drift = (started + time.time()) / 2 - remote_time
    where = urllib.parse.urlsplit(remote).netloc
    if abs(drift) > CLOCK_TOLERANCE_SECONDS:
        return problem("clock", f"this PC's clock is {drift:+.0f} s off {where}: sign-ins and SAS tokens fail",
                       "Settings > Time & language > Sync now (w32tm /resync from an elevated prompt)")
    return ok("clock", f"within {abs(drift):.0f} s of {where}")


def check_azure(options) -> Result:
    from pipeline_common.config import load_pipeline_config
    from pipeline_common.script_support import ScriptError
    from pipeline_common.settings import landing_dir

    config = load_pipeline_config()
    try:
        from pipeline_common.blob_paths import dataset_prefix
        from pipeline_common.source_container import open_source

        source = open_source()
    except ScriptError as exc:
        return problem("azure", str(exc), "fix the AZURE_* variables in .env (see .env.example)")
    try:
        if not hasattr(source, "container"):
            folder = landing_dir()
            if not folder.is_dir():
                return problem("azure", f"no Azure configured and no landing folder at {folder}",
                               "set AZURE_STORAGE_CONNECTION_STRING (or the account URL and a credential) in .env")
            return ok("azure", f"no Azure configured: reading the landing folder {folder}")
        first = config.datasets[0]
        try:
            listed = source.list([dataset_prefix(first.market, first.dataset)])
        except ScriptError as exc:
            return problem("azure", f"{source.describe()}: {exc}",
                           "check the AZURE_* credentials in .env and that this PC reaches the storage account")
        return ok("azure", f"{source.describe()} reachable; {len(listed)} blob(s) under {first.market}/{first.dataset}")
    finally:
        with contextlib.suppress(Exception):
            source.close()


def configured(name: str, load: Callable[[], object | None], unset: str) -> tuple[object | None, Result | None]:
    """(settings, None) for a service whose variables are set; (None, the result to report) when they are
    wrong (a PROBLEM naming the variables) or unset (SKIPPED: `unset` says what happens instead)."""
    from pipeline_common.script_support import ScriptError

    try:
        settings = load()
    except ScriptError as exc:
        return None, problem(name, str(exc), f"fix the {name.upper()}_* variables in .env (see .env.example)")
    return (settings, None) if settings is not None else (None, skipped(name, unset))


def check_sharepoint(options) -> Result:
    from pipeline_common.config import load_pipeline_config, today_in
    from pipeline_common.script_support import ScriptError
    from sharepoint_budget.workbook_download import download_workbook, sharepoint_settings

    settings, result = configured("sharepoint", sharepoint_settings,
                                  "not configured: the budget workbook is read from the landing folder")
    if result is not None:
        return result
    year = today_in(load_pipeline_config().timezone).year
    name = f"Daily Sales Budget {year}.xlsx"
    try:
        path = download_workbook(settings, name)
    except ScriptError as exc:
        return problem("sharepoint", f"'{name}': {exc}",
                       "check the SHAREPOINT_* credentials, the app's Sites.Selected grant and the folder")
    with contextlib.suppress(OSError):
        Path(path).unlink()
    return ok("sharepoint", f"signed in and downloaded '{name}'")


def check_tableau(options) -> Result:
    import dataclasses
    import logging

    from pipeline_common.script_support import ScriptError
    from pipeline_common.tableau import warnings as tableau_warnings
    from pipeline_common.tableau.session import signed_in, tableau_settings

    settings, result = configured("tableau", tableau_settings, "not configured: extracts are built and backed up, not published")
    if result is not None:
        return result
    quick = dataclasses.replace(settings, retries=1, request_timeout=HTTP_TIMEOUT_SECONDS)
    version = ""
    try:
        # The PAT's session lock, as a publish holds it: the doctor never ends a running publish's session.
        with signed_in(quick, logging.getLogger("doctor.tableau"), lock_timeout=30) as session:
            version = session.product_version
    except ScriptError as exc:
        text = " ".join(str(exc).split())[:400]
        rejected = "sign-in refused" in text
        return problem("tableau", f"{settings.server_url}: {'sign-in rejected: ' if rejected else ''}{text}",
                       "create a new personal access token in Tableau and set TABLEAU_PAT_NAME/TABLEAU_PAT_SECRET"
                       if rejected else "check TABLEAU_SERVER_URL, the proxy and certificates (docs/sources.md)")
    except Exception as exc:  # noqa: BLE001 - every client error is a line here, never a traceback
        return problem("tableau", f"{settings.server_url}: {_short(exc)}",
                       "check TABLEAU_SERVER_URL and that this PC reaches it")
    site = "the Default site" if not settings.site_id else f"site '{settings.site_id}'"
    detail = f"signed in to {settings.server_url} ({site}, Tableau {version}) with {settings.pat_name}"
    warnings_line = tableau_warnings.availability_text(settings)
    if warnings_line and "NOT AVAILABLE" in warnings_line:
        return problem("tableau", f"{detail}; {warnings_line}",
                       "ask the Tableau admin for Data Management on the site, or leave it: the Slack alert still goes out")
    return ok("tableau", detail + (f"; {warnings_line}" if warnings_line else ""))


def check_slack(options) -> Result:
    import requests

    from pipeline_common.config import load_pipeline_config
    from pipeline_common.settings import env

    routes = load_pipeline_config().alerts.routes
    configured = {route: env(var) for route, var in routes.items() if env(var)}
    if not configured:
        return skipped("slack", "no SLACK_WEBHOOK_* set: alerts go to the log and $DATA_DIR/alerts/")
    broken = []
    for route, url in configured.items():
        try:
            # An empty message is refused (400 no_text / invalid_payload) by a live webhook without
            # posting anything; a revoked or mistyped one answers 403/404/410.
            response = requests.post(url, json={}, timeout=HTTP_TIMEOUT_SECONDS)
            if response.status_code in (403, 404, 410):
                from orchestration.alerts.slack import slack_error_token  # the body quoted only as Slack's token

                broken.append(f"{route} (HTTP {response.status_code} {slack_error_token(response.text)})")
        except requests.RequestException as exc:
            broken.append(f"{route} ({type(exc).__name__})")
    if broken:
        return problem("slack", "webhook not accepted for route(s): " + ", ".join(broken),
                       "create a new incoming webhook in Slack and set its SLACK_WEBHOOK_<ROUTE> in .env")
    return ok("slack", f"webhooks live for route(s): {', '.join(sorted(configured))}")


def check_locations(options) -> Result:
    """OneDrive or a mapped drive under the repo, DATA_DIR or the Dagster home (scripts/check_install_path.py)."""
    from pipeline_common.settings import data_dir
    from scripts import check_install_path as paths

    named = [("the repo", str(REPO_ROOT)), ("DATA_DIR", str(data_dir().resolve())),
             ("DAGSTER_HOME", str(Path(options.dagster_home).resolve()))]
    drive_type = paths._drive_type if IS_WINDOWS else (lambda root: 0)
    found = paths.location_warnings(named, os.environ, drive_type)
    if found:
        details = [w.split(" | fix: ")[0] for w in found]
        fixes = sorted({w.split(" | fix: ")[1] for w in found if " | fix: " in w})
        return warning("locations", "; ".join(details), "; ".join(fixes))
    return ok("locations", "the repo, DATA_DIR and the Dagster home are local folders (not OneDrive, not a mapped drive)")


CHECKS: dict[str, Callable] = {
    "python": check_python,
    "packages": check_packages,
    "manifest": check_manifest,
    "data_dir": check_data_dir,
    "warehouse": check_warehouse,
    "task": check_task,
    "wake_timers": check_wake_timers,
    "long_paths": check_long_paths,
    "locations": check_locations,
    "port": check_port,
    "server": check_server,
    "schedules": check_schedules,
    "timezone": check_timezone,
    "clock": check_clock,
    "azure": check_azure,
    "sharepoint": check_sharepoint,
    "tableau": check_tableau,
    "slack": check_slack,
}


def run_check(name: str, options) -> Result:
    try:
        return CHECKS[name](options)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        return problem(name, f"the check itself failed: {_short(exc)}", "report this line to the pipeline's maintainer")


def outside_the_project() -> Result | None:
    """A Python without the project's installed packages (not the venv) can check nothing else: say so."""
    import importlib.util

    if importlib.util.find_spec("pipeline_common") is not None:
        return None
    result = check_python(None)
    if result.status == "OK":
        result = problem("python", f"the project's packages are not installed in {VENV}", "run scripts\\setup.bat")
    return result


def main(argv: list[str] | None = None) -> int:
    outside = outside_the_project()
    if outside is not None:  # paths only: no secret to scrub, and no scrubber to import
        print(f"{outside.status:<8} {outside.name}: {outside.detail} | fix: {outside.fix}\n\n1 problem(s): fix them from the top")
        return 1
    from pipeline_common.script_support import ArgumentParser, tolerate_console_encoding

    tolerate_console_encoding()
    from pipeline_common.tls import use_os_trust_store

    use_os_trust_store()  # the doctor checks the services as the pipeline reaches them
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000, help="the Dagster UI port (default 3000)")
    parser.add_argument("--dagster-home", type=Path, default=DEFAULT_HOME, help=f"default {DEFAULT_HOME}")
    parser.add_argument("--check", nargs="+", choices=list(CHECKS), metavar="NAME",
                        help=f"run only these checks: {', '.join(CHECKS)}")
    parser.add_argument("--min-free-gb", type=float, default=2.0, help="free disk space below this is a problem")
    options = parser.parse_args(argv)
    problems = 0
    for name in options.check or list(CHECKS):
        result = run_check(name, options)
        problems += result.status == "PROBLEM"
        print(result.line(), flush=True)
    print(f"\n{'all checks OK' if not problems else f'{problems} problem(s): fix them from the top'}")
    return 1 if problems else 0


if __name__ == "__main__":
    try:  # any OSError, bad config: 74/78, never a traceback
        from pipeline_common.script_support import run_main
    except ImportError:  # run by a Python outside the project's venv: the python check says so
        raise SystemExit(main()) from None
    raise SystemExit(run_main(main))
