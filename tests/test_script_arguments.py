"""Wrong arguments are a configuration error: every script exits 78 (contract section 8), never 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _scripts() -> list[Path]:
    """Every runnable Python script of the project: scripts/ and the legacy scripts."""
    candidates = [*sorted((REPO / "scripts").glob("*.py")), *sorted((REPO / "scripts" / "dev").glob("*.py")),
                  *sorted((REPO / "bat_file_data_refresh" / "python").glob("*/*.py"))]
    return [p for p in candidates if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.name)
def test_an_unknown_option_exits_78_with_usage(script: Path, tmp_path):
    result = subprocess.run([sys.executable, str(script), "--no-such-option"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**os.environ, "DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 78, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script; start_dagster.bat passes arguments the same way")
def test_start_sh_passes_arguments_to_the_supervisor_and_its_exit_code_back(tmp_path):
    result = subprocess.run([str(REPO / "scripts" / "start.sh"), "--no-such-option"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")})
    assert result.returncode == 78, result.stderr
    assert "usage: supervisor.py" in result.stderr


def test_there_is_something_to_check():
    names = {p.name for p in _scripts()}
    assert {"duckdb_to_tableau_server.py", "sync_azure.py", "daily_sales_ingest.py", "run_flow.py",
            "status.py", "supervisor.py", "generate_sample_data.py"} <= names
