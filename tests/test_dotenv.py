"""README "Environment": `.env` at the repo root is read, and values already in the environment win.

Run on a copy of the scripts with its own `.env` (never the developer's), through the real sync
script, so what is observed is where it reads from and where it writes to.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PIPELINE_ENV_VARS
from tests.plugins.azurite import LandingTree
from tests.plugins.repo_copy import copy_import_path, copy_packages

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)


def _repo_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    copy_packages(root)
    shutil.copy2(REPO / "pipeline.yaml", root / "pipeline.yaml")
    return root


def _sync(root: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    tmp_path = root.parent
    # The test session blanks the pipeline variables; a blank value would mask .env, so drop them.
    env = {k: v for k, v in os.environ.items() if k not in PIPELINE_ENV_VARS and k != "PIPELINE_CONFIG"}
    env.update(environment)
    env["PYTHONPATH"] = copy_import_path(root)
    script = root / "bat_file_data_refresh" / "python" / "azure_sync" / "sync_azure.py"
    return subprocess.run(
        [sys.executable, str(script), "--market", "UK", "--dataset", "ingest_orders", "--days-back", "1",
         "--as-of", DAY.isoformat()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def _parquet(data_dir: Path) -> Path:
    return data_dir / "raw" / "UK" / "ingest_orders" / f"{DAY:%Y}" / f"ingest_orders_{DAY:%Y%m%d}.parquet"


def test_dotenv_supplies_what_the_environment_does_not_set_and_the_environment_wins(tmp_path):
    root = _repo_copy(tmp_path)
    landing = LandingTree(tmp_path / "landing_from_dotenv")
    landing.write_orders("UK", DAY, rows=7)
    dotenv_data, env_data = tmp_path / "data_from_dotenv", tmp_path / "data_from_environment"
    (root / ".env").write_text(
        f"# as an analyst fills it in\nLANDING_DIR={landing.root}\nDATA_DIR={dotenv_data}\n", encoding="utf-8"
    )

    result = _sync(root, {"DATA_DIR": str(env_data)})

    assert result.returncode == 0, result.stderr
    assert _parquet(env_data).is_file()  # DATA_DIR: the environment's value won
    assert not dotenv_data.exists()
    assert str(landing.root) in result.stderr  # LANDING_DIR: only in .env, so read from there


def test_without_dotenv_the_defaults_apply(tmp_path):
    root = _repo_copy(tmp_path)
    landing = LandingTree(root / "data" / "landing")  # the default: $DATA_DIR/landing, DATA_DIR = <repo>/data
    landing.write_orders("UK", DAY, rows=7)
    result = _sync(root, {})
    assert result.returncode == 0, result.stderr
    assert _parquet(root / "data").is_file()
