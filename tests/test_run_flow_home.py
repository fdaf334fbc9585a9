"""scripts/run_flow.py records in the project's Dagster home by default and says which (issue 26, item 3).

The project's home is $DAGSTER_HOME, else dagster_home/ beside the scripts (the one scripts/start.sh,
the UI and status.py use). To see the default without touching this checkout's own home, the test
runs the script from a copy of the project's top level (run_flow.py, supervisor.py, workspace.yaml,
dagster.yaml) in a temporary folder, with DAGSTER_HOME unset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("run_flow.py", "supervisor.py"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    for name in ("workspace.yaml", "dagster.yaml"):
        shutil.copy2(REPO / name, root / name)
    return root


def _run(root: Path, tmp_path: Path, landing: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["LANDING_DIR"] = str(landing)
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "run_flow.py"), "--job", "ingest_scv_job", "--rows", "0",
         "--log-file", str(tmp_path / "run.log"), *args],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )


def test_without_dagster_home_the_run_is_recorded_in_the_projects_home(sample_landing, isolated_env, tmp_path):
    root = _project_copy(tmp_path)
    done = _run(root, tmp_path, sample_landing)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    home = root / "dagster_home"
    assert f"recorded in the Dagster home {home}" in done.stdout
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "ingest_scv_job" and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.run_id in done.stdout


def test_a_throwaway_instance_only_on_request_and_said_so(sample_landing, isolated_env, tmp_path):
    root = _project_copy(tmp_path)
    done = _run(root, tmp_path, sample_landing, "--throwaway-instance")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "throwaway instance" in done.stdout and "in no UI" in done.stdout
    assert not (root / "dagster_home").exists()
