"""scripts/run_flow.py files its run like a UI launch: under the job's code location, with the job's tags."""

from __future__ import annotations

import os
import shutil
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]


def test_the_run_belongs_to_its_job_in_the_served_code_location(sample_landing, isolated_env, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "LANDING_DIR": str(sample_landing)}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_flow.py"), "--job", "ingest_scv_job", "--rows", "2",
         "--log-file", str(tmp_path / "run.log")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_id = re.search(r"^run (\S+) of ingest_scv_job \(location retail_sales\)", done.stdout, re.M).group(1)
    # one line for the sync step, naming the asset it materialized
    assert re.search(r"^  ok      azure_sync  \([0-9.]+ s\): uk_scv$", done.stdout, re.M)
    # the scripts' own lines went to the log file, once, not to the console
    assert "sync_batch" not in done.stdout and "sync_batch" in (tmp_path / "run.log").read_text()

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        origin = run.remote_job_origin
        assert origin.job_name == "ingest_scv_job"
        assert origin.repository_origin.code_location_origin.location_name == "retail_sales"
        # the job's own tags, as a launch from the UI adds them
        assert run.tags.get("dagster/max_retries") == "2"
        # what the UI's job page and Overview timeline filter on: the job and its repository label
        found = instance.get_runs(dg.RunsFilter(job_name="ingest_scv_job",
                                                tags={".dagster/repository": "__repository__@retail_sales"}))
        assert [r.run_id for r in found] == [run_id]


def test_a_failed_step_and_its_failed_checks_are_named_on_the_console(sample_landing, isolated_env, tmp_path):
    """The console follows the run as it happens: the failing step's line carries the reason, and every
    check that did not pass is named (a sync that failed still has its checks evaluated)."""
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    [newest] = sorted(landing.glob("UK/**/ingest_scv_*.csv"))[-1:]
    newest.write_text('"customer_id","segment","lifetime_orders","lifetime_value_gbp"\n'
                      '100001,"Occasional",three,733.79\n', encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "LANDING_DIR": str(landing)}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_flow.py"), "--job", "ingest_scv_job", "--rows", "0",
         "--log-file", str(tmp_path / "run.log")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    failed = re.search(r"^  FAILED  azure_sync: (.+)$", done.stdout, re.M)
    # the reason without Python's exception class, then the detail naming the dataset, file and cell
    assert failed.group(1).startswith("sync_batch.py rejected bad input (exit 65)"), done.stdout
    detail = done.stdout[failed.end():].split("\n  CHECK")[0]
    assert "UK/ingest_scv" in detail and "line 2, column 'lifetime_orders'" in detail, done.stdout
    # the only SCV file was rejected, so no Parquet exists: the schema check fails whatever the clock says
    assert re.search(r"^  CHECK   uk_scv: parquet_schema_matches_contract failed$", done.stdout, re.M), done.stdout
    assert re.search(r"^ingest_scv_job: FAILURE in \d+ s", done.stdout, re.M)


def test_a_console_that_goes_away_does_not_break_the_run(sample_landing, isolated_env, tmp_path, monkeypatch):
    """The run is executed by the loop that prints its steps: when the reader of the console goes away
    (a closed pipe, a closed window) right after the first line, the run still finishes and succeeds."""
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "LANDING_DIR": str(sample_landing)}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run_flow.py"), "--job", "ingest_scv_job", "--rows", "0",
         "--log-file", str(tmp_path / "run.log")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )
    first = process.stdout.readline().decode()
    process.stdout.close()  # nobody reads the step lines any more
    process.wait(timeout=600)
    run_id = re.match(r"run (\S+) of ingest_scv_job", first).group(1)

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    assert (isolated_env / "raw" / "UK" / "ingest_scv").is_dir()
