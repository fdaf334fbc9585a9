"""What the dbt asset costs before dbt starts: one dbt process per build, no re-parse, full rebuild on demand.

A wrapper dbt executable records every dbt process the resource starts; dbt's own log says whether
it re-parsed the project. The builds are real (dbt on DuckDB over the session's synced sample data).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.warehouse.assets import DBT_RESOURCE_KEY, FULL_REBUILD_JOB
from orchestration.warehouse.project import dbt_executable, prepared_for, warehouse_dbt_project, warehouse_env
from orchestration.warehouse.resource import WarehouseDbtCliResource

REPARSE_MESSAGE = "Unable to do partial parsing"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="the recording wrapper is a POSIX script; the overrides "
                                "it checks are platform-free (the same Python on Windows), and "
                                "tests/test_warehouse_dagster.py builds through the same resource there")


@pytest.fixture(scope="module")
def dbt_assets_def() -> dg.AssetsDefinition:
    from orchestration.warehouse.assets import build_dbt_assets
    from pipeline_common.config import load_pipeline_config

    return build_dbt_assets(load_pipeline_config())


def recording_dbt(folder: Path, log: Path) -> Path:
    """A dbt executable that appends its arguments and target folder to `log`, then runs the real dbt."""
    wrapper = folder / "dbt"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a', encoding='utf-8') as out:\n"
        "    out.write(json.dumps({'args': sys.argv[1:], 'target': os.environ.get('DBT_TARGET_PATH')}) + '\\n')\n"
        f"os.execv({dbt_executable()!r}, [{dbt_executable()!r}, *sys.argv[1:]])\n",
        encoding="utf-8",
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def last_builds(duckdb_path: Path) -> dict[str, str]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return dict(con.execute("select model, last_build from _warehouse_state").fetchall())


def test_dbt_asset_starts_one_dbt_per_build_without_reparsing(built_warehouse, dbt_assets_def, isolated_env, tmp_path):
    from orchestration.definitions import defs

    data_dir = isolated_env
    shutil.copytree(built_warehouse.data_dir / "raw", data_dir / "raw")
    log = tmp_path / "dbt_calls.jsonl"
    resource = WarehouseDbtCliResource(project_dir=warehouse_dbt_project(), dbt_executable=str(recording_dbt(tmp_path, log)))

    # First build in a fresh warehouse with paths the manifest was not prepared for: it prepares once.
    result = dg.materialize([dbt_assets_def], resources={DBT_RESOURCE_KEY: resource})
    assert result.success
    assert prepared_for(warehouse_dbt_project()) == warehouse_env()
    duckdb_path = Path(warehouse_env()["DUCKDB_PATH"])
    assert set(last_builds(duckdb_path).values()) == {"full"}

    # The daily build: incremental, and dbt reuses the prepared parse.
    result = dg.materialize([dbt_assets_def], resources={DBT_RESOURCE_KEY: resource})
    assert result.success
    builds = last_builds(duckdb_path)
    assert builds["qi_executive_daily_sales"] == builds["stg_uk_orders"] == "incremental", builds
    second = calls(log)[-1]
    dbt_log = (Path(warehouse_dbt_project().project_dir) / second["target"] / "dbt.log").read_text(encoding="utf-8")
    assert REPARSE_MESSAGE not in dbt_log

    # Every dbt process the resource started was a build: no `dbt --version`, no other helper call.
    assert [c["args"][0] for c in calls(log)] == ["build", "build"], calls(log)

    # The weekly full rebuild job (as its schedule launches it) rebuilds every incremental model in full.
    result = defs.resolve_job_def(FULL_REBUILD_JOB).execute_in_process(raise_on_error=False)
    assert result.success
    assert set(last_builds(duckdb_path).values()) == {"full"}
    schedule = defs.resolve_schedule_def("warehouse_full_rebuild_schedule")
    assert schedule.job_name == FULL_REBUILD_JOB and schedule.execution_timezone == "Europe/London"
