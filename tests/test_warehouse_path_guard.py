"""One warehouse path: a `dbt build` by hand that would build another warehouse than the pipeline's
(pipeline_common.settings: DUCKDB_PATH, else $DATA_DIR/warehouse/analytics.duckdb, `.env` applied,
relative to the repo root) stops before DuckDB opens anything, naming both paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestration.warehouse.project import dbt_executable

REPO = Path(__file__).resolve().parents[1]


def _dbt_build(cwd: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # Empty values count as unset for both dbt's profile and the pipeline's settings, and keep a
    # developer's `.env` out of the test (settings never overrides what the environment has).
    base = {**os.environ, "DATA_DIR": "", "DUCKDB_PATH": ""}
    return subprocess.run(
        [dbt_executable(), "build", "--project-dir", str(REPO / "dbt"), "--profiles-dir", str(REPO / "dbt"),
         "--select", "stg_uk_products_sku", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=300, check=False,
    )


def test_dbt_started_outside_the_repo_root_stops_naming_both_warehouses(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _dbt_build(elsewhere, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-2000:]
    assert f"dbt would build the warehouse {elsewhere.resolve() / 'data' / 'warehouse' / 'analytics.duckdb'}" in out
    assert f"the pipeline's is {(REPO / 'data' / 'warehouse' / 'analytics.duckdb').resolve()}" in out
    assert "run dbt from the repository root" in out
    assert not (elsewhere / "data").exists(), "no second warehouse, not even its folder"


def test_a_relative_data_dir_means_the_same_folder_to_dbt_and_the_pipeline_only_from_the_repo_root(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _dbt_build(elsewhere, tmp_path, DATA_DIR="pipeline_data")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"dbt would read raw files under {elsewhere.resolve() / 'pipeline_data'}" in out
    assert f"the pipeline's DATA_DIR is {(REPO / 'pipeline_data').resolve()}" in out
    assert not (elsewhere / "pipeline_data").exists() and not (REPO / "pipeline_data").exists()


def test_absolute_paths_build_wherever_dbt_starts(tmp_path: Path):
    """What Dagster does (absolute DATA_DIR and DUCKDB_PATH): the guard lets it through."""
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _dbt_build(elsewhere, tmp_path, DATA_DIR=str(data), DUCKDB_PATH=str(data / "wh" / "w.duckdb"))
    out = done.stdout + done.stderr
    assert "dbt would" not in out
    assert (data / "wh" / "w.duckdb").is_file(), out[-2000:]
