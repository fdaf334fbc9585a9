"""scripts/doctor.py: OK on a healthy set-up, and the right PROBLEM line (exit 1) for each problem injected.

The whole doctor against a real supervised `dagster dev` (exit 0) runs in the e2e test; here each
check is run on its own (`--check NAME`) against real components: DuckDB files, a process holding
the warehouse lock, Azurite, the Tableau and Slack doubles, a socket on the port.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.plugins.azurite import ACCOUNT_KEY
from tests.plugins.loopback_http import free_port, serve_on_loopback
from tests.plugins.tableau_server import PAT_SECRET

REPO = Path(__file__).resolve().parents[1]
DOCTOR = REPO / "scripts" / "doctor.py"


@pytest.fixture
def doctor(monkeypatch):
    from scripts import doctor as module

    monkeypatch.setattr(module, "real_utc_offsets", module._utc_offsets, raising=False)
    _pc_in(module, monkeypatch, "Europe/London")  # not TZ: the Microsoft C runtime ignores it
    return module


def _pc_in(doctor, monkeypatch, zone_name: str) -> None:
    """The machine's local zone as the doctor's time-zone check sees it."""
    from zoneinfo import ZoneInfo

    real = doctor.real_utc_offsets
    monkeypatch.setattr(doctor, "_utc_offsets", lambda zone, year: real(ZoneInfo(zone_name) if zone is None else zone, year))



def run(doctor, capsys, *args: str) -> tuple[int, list[str]]:
    code = doctor.main(list(args))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, lines[:-1]  # the last line is the summary


def line_for(lines: list[str], name: str) -> str:
    [line] = [entry for entry in lines if entry.split()[1] == f"{name}:"]
    return line


def test_a_healthy_set_up_is_all_ok(doctor, capsys, export_warehouse, isolated_env, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(landing))
    code, lines = run(doctor, capsys, "--port", str(free_port()), "--check", "python", "packages", "manifest",
                      "data_dir", "warehouse", "port", "timezone", "azure", "sharepoint", "tableau", "slack", "clock")
    assert code == 0, lines
    assert [line.split()[0] for line in lines] == ["OK"] * 8 + ["SKIPPED"] * 4
    assert line_for(lines, "warehouse").endswith("opens read-only (2 tables)")


def test_windows_only_checks_are_skipped_with_a_reason_elsewhere(doctor, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "IS_WINDOWS", False)
    code, lines = run(doctor, capsys, "--check", "task", "long_paths")
    assert code == 0
    assert line_for(lines, "task").startswith("SKIPPED  task: Windows only")
    assert line_for(lines, "long_paths").startswith("SKIPPED  long_paths: Windows only")


def test_not_the_projects_venv(tmp_path):
    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.exists():
        pytest.skip("no base interpreter beside the venv")
    result = subprocess.run([str(base), str(DOCTOR), "--check", "python"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "PROBLEM  python: running" in result.stdout and "not the project's venv" in result.stdout


def test_a_package_not_at_its_pin(doctor, capsys, tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("duckdb==0.0.1  # pinned\nnot-a-real-package-xyz==1.0\n")
    monkeypatch.setattr(doctor, "REQUIREMENTS", requirements)
    code, lines = run(doctor, capsys, "--check", "packages")
    assert code == 1
    line = line_for(lines, "packages")
    assert line.startswith("PROBLEM  packages:") and "duckdb" in line and "0.0.1 pinned" in line
    assert "not-a-real-package-xyz missing" in line and "fix: scripts\\setup.bat" in line


def test_a_manifest_older_than_a_model(doctor, capsys, tmp_path, monkeypatch):
    dbt = tmp_path / "dbt"
    shutil.copytree(REPO / "dbt", dbt, ignore=shutil.ignore_patterns("logs"))
    config = tmp_path / "pipeline.yaml"
    shutil.copy(REPO / "pipeline.yaml", config)
    manifest = dbt / "target" / "manifest.json"
    old = time.time() - 3600
    for path in [*dbt.rglob("*"), config]:
        os.utime(path, (old, old))
    os.utime(manifest, (old + 60, old + 60))
    monkeypatch.setattr(doctor, "DBT_DIR", dbt)
    monkeypatch.setenv("DBT_TARGET_PATH", str(manifest.parent))  # the manifest the code location would load
    monkeypatch.setattr(doctor, "CONFIG_FILE", config)
    monkeypatch.setattr(doctor, "REPO_ROOT", tmp_path)
    assert run(doctor, capsys, "--check", "manifest")[0] == 0
    (dbt / "models" / "marts" / "cross_market" / "qi_executive_daily_sales.sql").touch()
    code, lines = run(doctor, capsys, "--check", "manifest")
    assert code == 1
    line = line_for(lines, "manifest")
    assert "qi_executive_daily_sales.sql" in line and "fix: python scripts\\prepare_dbt.py" in line


@pytest.mark.parametrize("value, folder", [
    ("", "dbt/target"), ("   ", "dbt/target"), ("elsewhere/t", "dbt/elsewhere/t"), ("ABSOLUTE", "ABSOLUTE"),
])
def test_the_manifest_checked_is_in_dbts_target_folder(doctor, capsys, tmp_path, monkeypatch, value, folder):
    """DBT_TARGET_PATH moves the manifest for dbt, the code location and the doctor alike: relative to dbt/, or
    absolute; empty or blank is unset (dbt/target)."""
    absolute = tmp_path / "own target"
    monkeypatch.setattr(doctor, "DBT_DIR", tmp_path / "dbt")  # a dbt folder with no manifest anywhere
    monkeypatch.setenv("DBT_TARGET_PATH", value.replace("ABSOLUTE", str(absolute)))
    code, lines = run(doctor, capsys, "--check", "manifest")
    expected = absolute if value == "ABSOLUTE" else tmp_path / folder
    assert code == 1 and f"dbt manifest missing at {expected / 'manifest.json'}" in line_for(lines, "manifest")


@pytest.mark.parametrize("value", ["build", "ABSOLUTE", "build/../build/"])
def test_files_in_a_moved_target_folder_inside_dbt_are_no_dbt_inputs(doctor, capsys, tmp_path, monkeypatch, value):
    """Class: DBT_TARGET_PATH naming a folder inside dbt/ other than `target` (relative, absolute, with `..` and a
    trailing slash): every dbt run writes its files there after the manifest; they are dbt's output, not a model
    newer than the manifest, so the manifest is up to date; a model edited after it still is not."""
    dbt = tmp_path / "dbt"
    model = dbt / "models" / "orders.sql"
    model.parent.mkdir(parents=True)
    model.write_text("select 1 as id\n")
    config = tmp_path / "pipeline.yaml"
    config.write_text("markets: []\n")
    manifest = dbt / "build" / "manifest.json"
    run_file = dbt / "build" / "warehouse_dbt_models-0123abcd" / "run" / "warehouse" / "models" / "orders.sql"
    run_file.parent.mkdir(parents=True)
    manifest.write_text("{}")
    run_file.write_text("select 1 as id\n")
    old = time.time() - 3600
    for path in (model, config):
        os.utime(path, (old, old))
    os.utime(manifest, (old + 60, old + 60))  # the run's file stays newer: written by a run after the prepare
    monkeypatch.setattr(doctor, "DBT_DIR", dbt)
    monkeypatch.setattr(doctor, "CONFIG_FILE", config)
    monkeypatch.setattr(doctor, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("DBT_TARGET_PATH", value.replace("ABSOLUTE", str(manifest.parent)))
    code, lines = run(doctor, capsys, "--check", "manifest")
    assert code == 0, line_for(lines, "manifest")
    model.touch()
    code, lines = run(doctor, capsys, "--check", "manifest")
    assert code == 1 and "orders.sql" in line_for(lines, "manifest") and "build" not in line_for(lines, "manifest")


def test_data_dir_missing_or_short_of_space(doctor, capsys, isolated_env, monkeypatch, tmp_path):
    code, lines = run(doctor, capsys, "--check", "data_dir", "--min-free-gb", "1000000")
    assert code == 1 and "GB free on the disk of" in line_for(lines, "data_dir")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nowhere"))
    code, lines = run(doctor, capsys, "--check", "data_dir")
    assert code == 1 and "does not exist" in line_for(lines, "data_dir")


def test_a_held_warehouse_names_its_holder(doctor, capsys, export_warehouse):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(export_warehouse)], stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, lines = run(doctor, capsys, "--check", "warehouse")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert code == 1
    line = line_for(lines, "warehouse")
    assert f"(PID {holder.pid})" in line and "fix: if a dbt build is running, wait" in line


def test_no_warehouse_yet(doctor, capsys, isolated_env):
    code, lines = run(doctor, capsys, "--check", "warehouse")
    assert code == 1 and "PROBLEM  warehouse: no warehouse at" in line_for(lines, "warehouse")


def _registered(doctor, tmp_path, mutate=None) -> dict[str, str]:
    """The XML windows_task.py generates for this repo, as `schtasks /Query /XML` would return it."""
    from scripts import windows_task

    settings = windows_task.load_settings()
    tasks = windows_task.build(settings, str(doctor.REPO_ROOT).replace("/", "\\"), r"PC\ana", False)
    xml = {task["name"]: task["xml"] for task in tasks}
    if mutate:
        xml = mutate(xml)
    return xml


def test_the_registered_task_is_compared_with_the_settings(doctor, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "IS_WINDOWS", True)
    monkeypatch.setattr(doctor, "VENV", Path(str(doctor.VENV).replace("/", "\\")))
    tasks = _registered(doctor, tmp_path)
    monkeypatch.setattr(doctor, "_query_task_xml", lambda name: tasks.get(name))
    monkeypatch.setattr(doctor, "_console_tool", lambda command: None)  # no schtasks /V here
    monkeypatch.setattr(doctor, "_me", lambda: {r"PC\ana", "ana"})
    code, lines = run(doctor, capsys, "--check", "task")
    assert code == 0, lines

    def old_registration(xml):  # what the first register_task.ps1 registered
        server = xml["DailySalesDagster"].replace("<Priority>5</Priority>", "<Priority>7</Priority>")
        server = server.replace("<LogonType>Password</LogonType>", "<LogonType>Group</LogonType>")
        return {"DailySalesDagster": server}

    tasks = _registered(doctor, tmp_path, old_registration)
    code, lines = run(doctor, capsys, "--check", "task")
    assert code == 1
    line = line_for(lines, "task")
    assert "priority 7" in line and "logon type Group is none of" in line and "wake task" in line
    assert "-ExecutionPolicy Bypass -File .\\scripts\\register_task.ps1" in line

    tasks = {}
    code, lines = run(doctor, capsys, "--check", "task")
    assert code == 1 and "task DailySalesDagster is not registered" in line_for(lines, "task")


def test_long_paths_needed_for_a_deep_repo_folder(doctor, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "IS_WINDOWS", True)
    deep = r"C:\Users\ana.maria.rodriguez\OneDrive - Retail Group (United Kingdom) & Co\Documents\Analytics\pipelines"
    monkeypatch.setattr(doctor, "REPO_ROOT", Path(deep))
    monkeypatch.setenv("DBT_TARGET_PATH", "")  # dbt's target folder in the repo: dbt/target
    monkeypatch.setattr(doctor, "_long_paths_enabled", lambda: False)
    code, lines = run(doctor, capsys, "--check", "long_paths")
    assert code == 1
    line = line_for(lines, "long_paths")
    assert "over Windows' 260" in line and "LongPathsEnabled" in line and deep in line
    monkeypatch.setattr(doctor, "_long_paths_enabled", lambda: True)
    assert run(doctor, capsys, "--check", "long_paths")[0] == 0
    monkeypatch.setattr(doctor, "REPO_ROOT", Path(r"C:\pipelines\daily-sales"))
    monkeypatch.setattr(doctor, "_long_paths_enabled", lambda: False)
    code, lines = run(doctor, capsys, "--check", "long_paths")
    assert code == 0 and "longest dbt path" in line_for(lines, "long_paths")


def test_long_paths_measured_in_the_target_folder_dbt_target_path_names(doctor, capsys, monkeypatch, tmp_path):
    """Class: DBT_TARGET_PATH moves dbt's target folder out of the repo: the run files dbt writes are measured
    there (a deep folder needs long paths even for a short repo folder; a short one does not for a deep repo)."""
    import json

    model = {"resource_type": "model", "package_name": "warehouse", "path": "marts/m.sql",
             "original_file_path": "models/marts/" + "m" * 60 + ".sql"}
    deep = tmp_path / ("deep folder " * 12).strip().replace(" ", "_") / "target"
    shallow = tmp_path / "t"
    for folder in (deep, shallow):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"nodes": {"model.warehouse.m": model}}))
    monkeypatch.setattr(doctor, "IS_WINDOWS", True)
    monkeypatch.setattr(doctor, "_long_paths_enabled", lambda: False)
    monkeypatch.setattr(doctor, "REPO_ROOT", Path(r"C:\pipelines\daily-sales"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(deep))
    code, lines = run(doctor, capsys, "--check", "long_paths")
    assert code == 1 and str(deep).replace("/", "\\") in line_for(lines, "long_paths")
    deep_repo = r"C:\Users\ana.maria.rodriguez\OneDrive - Retail Group (United Kingdom) & Co\Documents\Analytics"
    monkeypatch.setattr(doctor, "REPO_ROOT", Path(deep_repo + r"\pipelines"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(shallow))
    code, lines = run(doctor, capsys, "--check", "long_paths")
    assert code == 0 and "longest dbt path" in line_for(lines, "long_paths")


def test_port_held_by_another_program_and_no_server(doctor, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, lines = run(doctor, capsys, "--port", str(port), "--check", "port", "server")
    assert code == 1
    assert f"(PID {os.getpid()})" in line_for(lines, "port")
    assert "not this pipeline's Dagster" in line_for(lines, "port")
    assert line_for(lines, "server").startswith("PROBLEM  server:")


def test_the_scheduler_daemon_not_running(doctor, capsys, tmp_path):
    from scripts import supervisor
    home = supervisor.prepare_home(tmp_path / "home")
    code, lines = run(doctor, capsys, "--dagster-home", str(home), "--check", "schedules")
    assert code == 1
    assert "the scheduler daemon is not running (last heartbeat never)" in line_for(lines, "schedules")
    code, lines = run(doctor, capsys, "--dagster-home", str(tmp_path / "never"), "--check", "schedules")
    assert code == 1 and "Dagster has never run" in line_for(lines, "schedules")


def _pc_in_tokyo(doctor, monkeypatch):
    _pc_in(doctor, monkeypatch, "Asia/Tokyo")


def test_a_windows_pc_in_a_time_zone_other_than_london(doctor, capsys, monkeypatch):
    _pc_in_tokyo(doctor, monkeypatch)
    monkeypatch.setattr(doctor, "IS_WINDOWS", True)
    code, lines = run(doctor, capsys, "--check", "timezone")
    assert code == 1 and "is not Europe/London" in line_for(lines, "timezone")
    assert "Settings > Time & language" in line_for(lines, "timezone")


def test_a_linux_server_on_utc_is_not_a_problem(doctor, capsys, monkeypatch):
    """Schedules run on London time whatever the machine's zone; the Windows fix would not apply."""
    _pc_in_tokyo(doctor, monkeypatch)
    monkeypatch.setattr(doctor, "IS_WINDOWS", False)
    code, lines = run(doctor, capsys, "--check", "timezone")
    assert code == 0 and "schedules run on Europe/London time regardless" in line_for(lines, "timezone")


def test_a_clock_ten_minutes_off(doctor, capsys, monkeypatch):
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response_only(200)  # send_response would add the true Date
            off = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)
            self.send_header("Date", email.utils.format_datetime(off, usegmt=True))
            self.end_headers()

        def log_message(self, *args):
            pass

    with serve_on_loopback(Handler, "clock") as url:
        monkeypatch.setenv("TABLEAU_SERVER_URL", url)
        code, lines = run(doctor, capsys, "--check", "clock")
    line = line_for(lines, "clock")
    assert code == 1 and re.search(r"clock is -(599|600|601) s off 127\.0\.0\.1", line), line


def test_azure_with_a_rejected_key_never_prints_it(doctor, capsys, azurite, monkeypatch):
    container = azurite.new_container("doctor")
    monkeypatch.setenv("AZURE_CONTAINER", container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    code, lines = run(doctor, capsys, "--check", "azure")
    line = line_for(lines, "azure")
    assert code == 0 and f"'{container}'" in line and "reachable" in line
    wrong_key = ACCOUNT_KEY[::-1]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(ACCOUNT_KEY, wrong_key))
    code, lines = run(doctor, capsys, "--check", "azure")
    assert code == 1 and line_for(lines, "azure").startswith("PROBLEM  azure:")
    assert wrong_key not in "\n".join(lines)


def test_tableau_sign_in_ok_and_rejected_without_the_secret(doctor, capsys, tableau_server, monkeypatch):
    for name, value in tableau_server.env().items():
        monkeypatch.setenv(name, value)
    code, lines = run(doctor, capsys, "--check", "tableau")
    assert code == 0 and "signed in to" in line_for(lines, "tableau")
    monkeypatch.setenv("TABLEAU_PAT_SECRET", "wrong-" + PAT_SECRET)
    code, lines = run(doctor, capsys, "--check", "tableau")
    assert code == 1 and "sign-in rejected" in line_for(lines, "tableau")
    assert PAT_SECRET not in "\n".join(lines)


def test_slack_webhooks_checked_without_posting_a_message(doctor, capsys, slack_server, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", slack_server.webhook_url("technical"))
    code, lines = run(doctor, capsys, "--check", "slack")
    assert code == 0 and "technical" in line_for(lines, "slack")
    assert slack_server.for_route("technical") == [{}]  # nothing a person would see in Slack
    revoked = f"{slack_server.url}/services/T0PIPELINE/B0GONE/revoked"
    monkeypatch.setenv("SLACK_WEBHOOK_DATA_QUALITY", revoked)
    code, lines = run(doctor, capsys, "--check", "slack")
    assert code == 1 and "data_quality (HTTP 404" in line_for(lines, "slack")
    assert "revoked" not in "\n".join(lines)  # the webhook URL is a secret


def test_doctor_bat_runs_doctor_from_the_venv():
    text = (REPO / "scripts" / "doctor.bat").read_text()
    assert 'cd /d "%~dp0.."' in text and '".venv\\Scripts\\python.exe" scripts\\doctor.py %*' in text
    assert "exit /b %ERRORLEVEL%" in text


def test_schedule_ticks_read_from_the_instance(doctor, capsys, tmp_path):
    """A live scheduler (fresh heartbeat) whose last tick failed is a problem; a successful one is OK."""
    from dagster import DagsterInstance
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        ScheduleInstigatorData,
        TickData,
        TickStatus,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.types import DaemonHeartbeat
    from dagster._utils.error import SerializableErrorInfo

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="orchestration.definitions"),
                                           location_name="retail_sales")
    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, "__repository__"), "uk_morning_refresh_schedule")
    state = InstigatorState(origin, InstigatorType.SCHEDULE, InstigatorStatus.RUNNING,
                            ScheduleInstigatorData("15 7 * * *", start_timestamp=time.time()))

    def tick(status, error=None):
        with DagsterInstance.from_config(str(home)) as instance:
            instance.create_tick(TickData(
                instigator_origin_id=state.instigator_origin_id, instigator_name=state.instigator_name,
                instigator_type=InstigatorType.SCHEDULE, status=status, timestamp=time.time(),
                selector_id=state.selector_id, error=error, run_ids=[],
            ))

    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_instigator_state(state)
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SCHEDULER", "daemon-1"))
    tick(TickStatus.FAILURE, SerializableErrorInfo("Schedule evaluation failed: no such job\ntrace", [], "Error"))
    code, lines = run(doctor, capsys, "--dagster-home", str(home), "--check", "schedules")
    assert code == 1
    line = line_for(lines, "schedules")
    assert "last tick failed: uk_morning_refresh_schedule" in line and "no such job" in line and "trace" not in line
    tick(TickStatus.SUCCESS)
    code, lines = run(doctor, capsys, "--dagster-home", str(home), "--check", "schedules")
    assert code == 0 and "uk_morning_refresh_schedule" in line_for(lines, "schedules")
    assert "SUCCESS" in line_for(lines, "schedules")
