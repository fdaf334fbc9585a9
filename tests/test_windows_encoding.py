"""Output under a Windows code page: run_flow.py and the legacy scripts never crash printing text
cp1252 lacks (DuckDB's box-drawing table, 東京), and their children run in UTF-8 mode."""

import dagster as dg

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "bat_file_data_refresh" / "python" / "create_hyper_files" / "duckdb_to_tableau_server.py"
CP1252 = {"PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0"}


def test_run_flow_prints_the_executive_table_to_a_cp1252_pipe(export_warehouse, isolated_env, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_flow.py"), "--job", "ingest_scv_job", "--log-level", "ERROR",
         "--log-file", str(tmp_path / "run_flow.log"), "--throwaway-instance"],
        cwd=REPO, capture_output=True, timeout=600,
        env={**os.environ, **CP1252, "LANDING_DIR": str(landing), "DAGSTER_HOME": ""},
    )
    out = result.stdout.decode("cp1252")
    err = result.stderr.decode("cp1252", errors="replace")
    assert "UnicodeEncodeError" not in err and "Traceback" not in err, err[-3000:]
    assert "qi_executive_daily_sales, newest 8 rows:" in out
    assert "JP" in out and "Zürich" in out  # cp1252 has ü; 東京 becomes ?? instead of a crash
    assert result.returncode in (0, 1), err[-3000:]


def test_a_script_error_with_text_cp1252_lacks_is_reported_not_a_logging_crash(export_warehouse):
    result = subprocess.run(
        [sys.executable, str(EXPORT), "--tables", "東京_sales", "--name", "tokyo", "--no-publish"],
        capture_output=True, timeout=300, env={**os.environ, **CP1252},
    )
    err = result.stderr.decode("cp1252", errors="replace")
    assert result.returncode == 65, err
    assert "Logging error" not in err and "Traceback" not in err
    assert "unknown table" in err


CHILD_SCRIPT = """
import sys
from pipeline_common.script_support import script_run
with script_run("encoding_probe") as run:
    run.log.info("Tōkyō 東京 │─┤")
    run.report_materialization({"utf8_mode": sys.flags.utf8_mode, "stdout": sys.stdout.encoding})
"""


def test_scripts_started_through_pipes_run_in_utf8_mode(tmp_path, monkeypatch):
    """A legacy script Dagster starts (real Pipes subprocess) runs in UTF-8 mode under a cp1252 parent."""

    from orchestration.pipes_runner import materialization_metadata, run_legacy_script

    for name, value in CP1252.items():
        monkeypatch.setenv(name, value)
    script = tmp_path / "probe.py"
    script.write_text(CHILD_SCRIPT, encoding="utf-8")

    @dg.asset
    def probe(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        invocation = run_legacy_script(context, pipes_subprocess_client, script, [])
        return dg.MaterializeResult(metadata=materialization_metadata(invocation))

    result = dg.materialize([probe], resources={"pipes_subprocess_client": dg.PipesSubprocessClient()})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    assert metadata["utf8_mode"] == 1 and metadata["stdout"] == "utf-8"
