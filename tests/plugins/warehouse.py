"""Fixtures: a warehouse built for real (sample landing -> sync -> budget ingest -> dbt build), once per session."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"
SYNC_BATCH_SCRIPT = SCRIPTS / "azure_sync" / "sync_batch.py"
BUDGET_SCRIPT = SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"


@dataclasses.dataclass(frozen=True)
class BuiltWarehouse:
    data_dir: Path
    duckdb_path: Path
    landing: Path


def pipeline_env(data_dir: Path, landing: Path, duckdb_path: Path) -> dict[str, str]:
    """The scripts' and dbt's environment: only the paths under test; no Azure/SharePoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SHAREPOINT_", "DBT_"))}
    env.update(DATA_DIR=str(data_dir), LANDING_DIR=str(landing), DUCKDB_PATH=str(duckdb_path))
    return env


def run_checked(args: list[str], env: Mapping[str, str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=dict(env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def ingest(landing: Path, data_dir: Path, as_of: str) -> None:
    """Run the real sync of every configured dataset (sync_batch.py: one process for all, as the flow's
    `azure_sync` step runs it), then the real budget ingest."""
    env = pipeline_env(data_dir, landing, data_dir / "warehouse" / "analytics.duckdb")
    run_checked([sys.executable, str(SYNC_BATCH_SCRIPT), "--as-of", as_of], env, "sync of every dataset")
    for year in sorted({p.stem.rsplit(" ", 1)[-1] for p in (landing / "sharepoint").glob("*.xlsx")}):
        run_checked([sys.executable, str(BUDGET_SCRIPT), "--year", year], env, f"budget ingest {year}")


def dbt_build(data_dir: Path, duckdb_path: Path, landing: Path | None = None,
              extra_args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """`dbt build --project-dir dbt --profiles-dir dbt` from the repo root, as the README runs it."""
    from orchestration.warehouse.project import dbt_executable  # imports dagster-dbt: only when building

    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    env = pipeline_env(data_dir, landing or data_dir / "landing", duckdb_path)
    # A private target dir: the session build must not race the developer's dbt/target.
    env["DBT_TARGET_PATH"] = str(duckdb_path.parent / "dbt_target")
    env["DBT_LOG_PATH"] = str(duckdb_path.parent / "dbt_logs")
    return subprocess.run(
        [dbt_executable(), "build", "--project-dir", "dbt", "--profiles-dir", "dbt", *(extra_args or [])],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="session")
def built_warehouse(sample_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The sample landing synced, budget ingested and `dbt build` run into a private DATA_DIR.

    Read-only for tests: copy data_dir first to change anything.
    """
    data_dir = tmp_path_factory.mktemp("warehouse_data")
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    ingest(sample_landing, data_dir, SAMPLE_AS_OF.isoformat())
    done = dbt_build(data_dir, duckdb_path, sample_landing)
    if done.returncode != 0:
        raise AssertionError(f"dbt build failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}")
    return BuiltWarehouse(data_dir=data_dir, duckdb_path=duckdb_path, landing=sample_landing)
