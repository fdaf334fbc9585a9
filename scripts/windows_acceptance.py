"""The acceptance checklist of docs/operations.md as automated steps, with one PASS/FAIL report file.

Run on the PC that will run the pipeline (scripts\\windows_acceptance.bat runs this with the venv):
as the analyst (a standard user) it checks the set-up, the registration for that user, the wake
settings, starts the server task, runs the daily flow, cancels a dbt build and sees the warehouse
lock freed, pauses and resumes, ends the supervisor and sees its whole tree go (the Job object),
and checks the state a reboot relies on. Run elevated (an IT admin) with `--register`, it first
registers the tasks for the user signed in at the console, with the start-up trigger.

    python scripts/windows_acceptance.py [--register] [--logon Password|S4U|Interactive]
        [--steps NAME ...] [--skip NAME ...] [--port 3000] [--url URL] [--report FILE]

Each step prints and records PASS, FAIL (with what was seen and what to do) or SKIPPED (with why:
e.g. a Windows-only step on Linux). Exit 0 when no step failed, 1 otherwise. The report file
(default logs\\windows_acceptance_<PC>_<time>.txt) is written whole at the end: attach it to the ticket.
What each step checks and what its FAIL means: docs/operations.md, "The acceptance script".
"""

from __future__ import annotations

import datetime as dt
import getpass
import importlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "scripts"
IS_WINDOWS = os.name == "nt"
FLOW_JOB = "daily_sales_flow_job"
CANCEL_JOB = "warehouse_full_rebuild_job"  # a dbt build only, tagged dbt_duckdb: one at a time
LOCK_FREE_WITHIN_S = 30
SETUP_CHECKS = ["python", "packages", "manifest", "data_dir", "long_paths", "locations", "timezone"]

LAUNCH = """mutation Launch($selector: JobOrPipelineSelector!) { launchRun(executionParams: {selector: $selector}) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = 'query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }'
TERMINATE = """mutation T($runId: String!) { terminateRun(runId: $runId) { __typename
  ... on TerminateRunFailure { message } ... on PythonError { message } } }"""
REPOS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"


def _load(name: str) -> Any:
    """A sibling desktop script as a module (doctor, pipeline_control, windows_task)."""
    return importlib.import_module(f"scripts.{name}")


@dataclass
class Outcome:
    status: str  # PASS, FAIL, SKIPPED
    detail: str
    fix: str = ""


def passed(detail: str) -> Outcome:
    return Outcome("PASS", detail)


def failed(detail: str, fix: str) -> Outcome:
    return Outcome("FAIL", detail, fix)


def skipped(reason: str) -> Outcome:
    return Outcome("SKIPPED", reason)


@dataclass
class Context:
    args: Any
    url: str
    home: Path
    warehouse: Path
    said: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"  {text}", flush=True)
        self.said.append(text)


# --- talking to the server ----------------------------------------------------------------------


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    if "errors" in body:
        raise RuntimeError(str(body["errors"])[:500])
    return body["data"]


def server_answers(url: str) -> bool:
    try:
        return "dagster_webserver_version" in requests.get(f"{url}/server_info", timeout=5).text
    except requests.RequestException:
        return False


def launch(url: str, job: str) -> str:
    (node,) = graphql(url, REPOS)["repositoriesOrError"]["nodes"]
    selector = {"repositoryName": node["name"], "repositoryLocationName": node["location"]["name"], "jobName": job}
    result = graphql(url, LAUNCH, {"selector": selector})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job}: {result}")
    return result["run"]["runId"]


def status(url: str, run_id: str) -> str:
    return graphql(url, STATUS, {"id": run_id})["runOrError"]["status"]


def wait_for_status(url: str, run_id: str, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = "?"
    while time.monotonic() < deadline:
        seen = status(url, run_id)
        if seen in wanted or seen in {"SUCCESS", "FAILURE", "CANCELED"}:
            return seen
        time.sleep(2)
    return seen


def warehouse_locked(path: Path) -> bool:
    import duckdb

    if not path.exists():
        return False
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        return "lock" in str(exc).lower()
    return False


# --- the steps ----------------------------------------------------------------------------------


def _doctor_lines(ctx: Context, checks: list[str]) -> list[str]:
    command = [sys.executable, str(SCRIPTS / "doctor.py"), "--port", str(ctx.args.port),
               "--dagster-home", str(ctx.home), "--check", *checks]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    return [line for line in done.stdout.splitlines() if line[:8].strip() in ("OK", "PROBLEM", "WARNING", "SKIPPED")]


def step_setup(ctx: Context) -> Outcome:
    """Checklist 1-2: the venv, the pinned packages, the dbt manifest, DATA_DIR, path length, time zone."""
    lines = _doctor_lines(ctx, SETUP_CHECKS)
    problems = [line for line in lines if line.startswith("PROBLEM")]
    for line in lines:
        ctx.say(line)
    if problems:
        return failed("; ".join(p[9:] for p in problems), "fix each doctor line from the top (scripts\\setup.bat first)")
    return passed(f"{len(lines)} set-up checks OK or skipped")


def step_locations(ctx: Context) -> Outcome:
    """The repo, DATA_DIR and the home are not in OneDrive and not on a mapped drive letter."""
    lines = _doctor_lines(ctx, ["locations"])
    for line in lines:
        ctx.say(line)
    warnings = [line for line in lines if line.startswith(("WARNING", "PROBLEM"))]
    if warnings:
        return failed(warnings[0][9:].split(" | fix: ")[0], warnings[0].split(" | fix: ")[-1])
    return passed("local folders only")


def step_register(ctx: Context) -> Outcome:
    """Checklist 4: the tasks are registered for this user (with --register: registered first)."""
    if not IS_WINDOWS:
        return skipped("Windows only (Task Scheduler)")
    if ctx.args.register:
        command = [sys.executable, str(SCRIPTS / "windows_task.py"), "--register", "--logon", ctx.args.logon]
        if ctx.args.user:
            command += ["--user", ctx.args.user]
        code = subprocess.run(command, cwd=REPO_ROOT).returncode  # schtasks asks for the password here
        if code != 0:
            return failed(f"registration failed (exit {code})", "see the schtasks message above the report lines")
    lines = _doctor_lines(ctx, ["task"])
    for line in lines:
        ctx.say(line)
    if not lines or not lines[0].startswith("OK"):
        return failed(lines[0][9:] if lines else "the doctor said nothing about the task",
                      lines[0].split(" | fix: ")[-1] if lines else "run scripts\\doctor.bat --check task")
    windows_task = _load("windows_task")
    boot = windows_task.is_elevated()
    return passed(lines[0][9:] + ("" if boot else " (standard user: no start-up trigger; an admin adds it)"))


def step_wake(ctx: Context) -> Outcome:
    """Checklist 7 (settings only): the wake task wakes the PC and the power plan allows wake timers."""
    if not IS_WINDOWS:
        return skipped("Windows only (power plan, wake task)")
    lines = _doctor_lines(ctx, ["wake_timers"])
    for line in lines:
        ctx.say(line)
    if not lines or lines[0].startswith("PROBLEM"):
        return failed(lines[0][9:] if lines else "no answer from powercfg", lines[0].split(" | fix: ")[-1] if lines else "")
    return passed(lines[0][9:])


def step_start(ctx: Context) -> Outcome:
    """Checklist 5: the server task starts and the UI answers within 3 minutes."""
    if server_answers(ctx.url):
        return passed(f"the server answers at {ctx.url}")
    if not IS_WINDOWS:
        return skipped("no server at --url and no Task Scheduler to start one (start scripts/start.sh first)")
    control = _load("pipeline_control")
    code = control.resume(ctx.args.port, control.default_scheduler(), 180, say=ctx.say,
                          answers=lambda port: server_answers(ctx.url))
    if code != 0:
        return failed(f"the server did not answer at {ctx.url}", "see logs\\supervisor.log and scripts\\doctor.bat")
    return passed(f"started by the task; the server answers at {ctx.url}")


def step_flow(ctx: Context) -> Outcome:
    """Checklist 3/5: the whole daily flow runs through the server and succeeds."""
    if not server_answers(ctx.url):
        return skipped("no server answers (see the start step)")
    run_id = launch(ctx.url, FLOW_JOB)
    ctx.say(f"launched {FLOW_JOB}: run {run_id}")
    seen = wait_for_status(ctx.url, run_id, {"SUCCESS"}, ctx.args.flow_timeout)
    if seen != "SUCCESS":
        return failed(f"{FLOW_JOB} run {run_id} ended {seen}", "open the run in the UI; its failed step says what to fix")
    return passed(f"{FLOW_JOB} run {run_id} succeeded")


def step_cancel(ctx: Context) -> Outcome:
    """Cancel a dbt build from the UI's API: dbt stops, the DuckDB lock is free within 30 s, the next
    queued run starts (docs/operations.md, "Cancel a run")."""
    if not server_answers(ctx.url):
        return skipped("no server answers (see the start step)")
    first, second = launch(ctx.url, CANCEL_JOB), launch(ctx.url, CANCEL_JOB)
    ctx.say(f"launched {CANCEL_JOB} twice: {first} (to cancel) and {second} (queued behind it)")
    deadline = time.monotonic() + 600
    while not warehouse_locked(ctx.warehouse):
        if time.monotonic() > deadline or status(ctx.url, first) in {"SUCCESS", "FAILURE", "CANCELED"}:
            return failed(f"run {first} never held {ctx.warehouse} (ended {status(ctx.url, first)})",
                          "make the warehouse bigger than a few seconds' build, or look at the run in the UI")
        time.sleep(0.3)
    result = graphql(ctx.url, TERMINATE, {"runId": first})["terminateRun"]
    asked = time.monotonic()
    if result["__typename"] != "TerminateRunSuccess":
        return failed(f"terminateRun answered {result}", "terminate it in the UI and report the message")
    while warehouse_locked(ctx.warehouse):
        if time.monotonic() - asked > LOCK_FREE_WITHIN_S:
            return failed(f"the warehouse was still locked {LOCK_FREE_WITHIN_S} s after the cancel",
                          "dbt kept running: note the dbt.exe/python.exe processes in Task Manager and report them")
        time.sleep(0.3)
    freed = time.monotonic() - asked
    ctx.say(f"warehouse free {freed:.1f} s after terminateRun")
    ended = wait_for_status(ctx.url, first, {"CANCELED"}, 120)
    started = wait_for_status(ctx.url, second, {"STARTING", "STARTED"}, 180)
    if ended != "CANCELED" or started not in {"STARTING", "STARTED", "SUCCESS"}:
        return failed(f"cancelled run ended {ended}; the queued run is {started}",
                      "the queue did not move on: see the runs in the UI and logs\\dagster.log")
    wait_for_status(ctx.url, second, {"SUCCESS"}, ctx.args.flow_timeout)
    return passed(f"lock free {freed:.1f} s after the cancel; the queued run started")


def step_pause_resume(ctx: Context) -> Outcome:
    """Checklist 10: pause stops everything and it stays stopped; resume brings the UI back."""
    control = _load("pipeline_control")
    scheduler = control.default_scheduler()
    code = control.pause(ctx.home, ctx.warehouse, scheduler, 90, say=ctx.say)
    if code != 0:
        return failed("pause did not confirm", "see the NOT PAUSED line above")
    if scheduler is not None:  # the 5-minute trigger must not bring it back while paused
        time.sleep(ctx.args.paused_for)
        if server_answers(ctx.url):
            return failed("the server came back while paused", "the tasks were not disabled: run scripts\\doctor.bat --check task")
    code = control.resume(ctx.args.port, scheduler, 180, say=ctx.say, answers=lambda port: server_answers(ctx.url))
    if code != 0:
        return failed("resume did not bring the server back", "see the NOT RESUMED line above")
    return passed("paused (tasks disabled, no process, warehouse free) and resumed"
                  + ("" if scheduler else " (no Task Scheduler here: resume means scripts/start.sh)"))


def step_kill_supervisor(ctx: Context) -> Outcome:
    """Checklist 9: ending the supervisor ends every process below it at once (the Job object)."""
    if not IS_WINDOWS:
        return skipped("Windows only (the kill-on-close Job object; Linux: tests/test_supervisor_tree.py)")
    control = _load("pipeline_control")
    pid = control.supervisor_pid(ctx.home)
    if pid is None:
        return failed("no supervisor runs on " + str(ctx.home), "start the task first (see the start step)")
    tree = control.recorded_tree(ctx.home)
    psutil.Process(pid).kill()  # TerminateProcess, like Task Manager's End task
    deadline = time.monotonic() + 15
    while any(p.is_running() for p in tree) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [p.pid for p in tree if p.is_running()]
    if left:
        return failed(f"processes outlived the supervisor: {left}", "report this (the Job object did not hold them)")
    code = control.resume(ctx.args.port, control.default_scheduler(), 180, say=ctx.say,
                          answers=lambda port: server_answers(ctx.url))
    return passed("every process below the supervisor ended with it; the task started it again") if code == 0 else \
        failed("the tree ended, but the task did not start again", "see the task's History tab")


def step_reboot_ready(ctx: Context) -> Outcome:
    """Checklist 6 (the state a reboot relies on; the reboot itself is manual): tasks enabled, start-up
    trigger when an admin registered, last result fine."""
    if not IS_WINDOWS:
        return skipped("Windows only (Task Scheduler)")
    doctor = _load("doctor")
    xml = doctor._query_task_xml("DailySalesDagster")
    if xml is None:
        return failed("DailySalesDagster is not registered", "run scripts\\register_task.bat")
    issues = []
    if "<Enabled>false</Enabled>" in xml:
        issues.append("the task is disabled (still paused?)")
    if "<BootTrigger>" not in xml:
        issues.append("no start-up trigger: after a reboot the server waits for the analyst to sign in")
    lines = _doctor_lines(ctx, ["task"])
    if lines and lines[0].startswith("PROBLEM"):
        issues.append(lines[0][9:])
    if issues:
        return failed("; ".join(issues), "an admin runs scripts\\windows_acceptance.bat --register elevated; "
                      "scripts\\resume_pipeline.bat enables the tasks")
    return passed("tasks enabled, start-up trigger present, last result fine; reboot by hand (checklist step 6)")


STEPS: dict[str, Callable[[Context], Outcome]] = {
    "setup": step_setup,
    "locations": step_locations,
    "register": step_register,
    "wake": step_wake,
    "start": step_start,
    "flow": step_flow,
    "cancel": step_cancel,
    "pause_resume": step_pause_resume,
    "kill_supervisor": step_kill_supervisor,
    "reboot_ready": step_reboot_ready,
}


def report_text(header: list[str], results: list[tuple[str, Outcome]]) -> str:
    lines = [*header, ""]
    for name, outcome in results:
        line = f"{outcome.status:<8} {name}: {outcome.detail}"
        if outcome.status == "FAIL" and outcome.fix:
            line += f" | what to do: {outcome.fix}"
        lines.append(line)
    failures = [name for name, outcome in results if outcome.status == "FAIL"]
    lines += ["", f"RESULT: {'FAIL' if failures else 'PASS'} ({len(results) - len(failures)} of {len(results)} steps "
              f"passed or skipped{'; failed: ' + ', '.join(failures) if failures else ''})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from pipeline_common.files import atomic_write
    from pipeline_common.script_support import ArgumentParser, tolerate_console_encoding
    from pipeline_common.settings import duckdb_path, load_dotenv_once

    tolerate_console_encoding()
    load_dotenv_once()
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), metavar="NAME", help=f"only these: {', '.join(STEPS)}")
    parser.add_argument("--skip", nargs="+", choices=list(STEPS), metavar="NAME", default=[], help="leave these out")
    parser.add_argument("--register", action="store_true", help="register the tasks first (an admin runs this elevated)")
    parser.add_argument("--user", default=None, help=r"with --register: DOMAIN\user (default: the console user)")
    parser.add_argument("--logon", default="Password", choices=["Password", "S4U", "Interactive"])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--url", default=None, help="the server (default http://127.0.0.1:PORT)")
    parser.add_argument("--dagster-home", type=Path, default=Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "dagster_home"))
    parser.add_argument("--flow-timeout", type=float, default=1800, help="seconds a flow run may take")
    parser.add_argument("--paused-for", type=float, default=330,
                        help="seconds to stay paused, to see the 5-minute trigger not restart the server")
    parser.add_argument("--report", type=Path, default=None, help="the report file (default logs\\windows_acceptance_...)")
    args = parser.parse_args(argv)
    ctx = Context(args, args.url or f"http://127.0.0.1:{args.port}", args.dagster_home.resolve(), duckdb_path().resolve())
    now = dt.datetime.now().astimezone()
    report = args.report or REPO_ROOT / "logs" / f"windows_acceptance_{platform.node()}_{now:%Y%m%d-%H%M%S}.txt"
    elevated = IS_WINDOWS and _load("windows_task").is_elevated()
    header = [f"Windows acceptance of the daily sales pipeline, {now:%Y-%m-%d %H:%M %Z}",
              f"PC {platform.node()} ({platform.platform()}), user {getpass.getuser()}"
              f"{' (elevated)' if elevated else ''}, repo {REPO_ROOT}",
              f"Python {platform.python_version()}, server {ctx.url}, Dagster home {ctx.home}, warehouse {ctx.warehouse}"]
    print("\n".join(header))
    results: list[tuple[str, Outcome]] = []
    for name in args.steps or list(STEPS):
        if name in args.skip:
            continue
        print(f"{name}: {STEPS[name].__doc__.splitlines()[0]}", flush=True)
        try:
            outcome = STEPS[name](ctx)
        except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others
            outcome = failed(f"the step itself failed: {type(exc).__name__}: {exc}", "report this line")
        print(f"{outcome.status:<8} {name}: {outcome.detail}", flush=True)
        results.append((name, outcome))
    text = report_text(header, results)
    report.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(report) as partial:
        partial.write_text(text, encoding="utf-8")
    print(f"\nreport: {report}")
    return 1 if any(outcome.status == "FAIL" for _, outcome in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
