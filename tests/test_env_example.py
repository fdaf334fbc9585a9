"""`cp .env.example .env` changes nothing: the sync, the budget ingest and the export CLI behave
exactly as with no `.env` (same exit codes, same JSON lines, same outputs, publishing skipped), and
a `.env` really is read (one filled-in, half-set group turns into exit 78 naming what is missing).

The scripts run from a copy of the repository's scripts and config in tmp_path, so the test never
writes a `.env` into the developer's checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.plugins.repo_copy import copy_import_path, copy_packages
from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[1]
YEAR = SAMPLE_AS_OF.year
# Only what a Python process needs from the machine; no pipeline variable at all.
BASE_ENV_NAMES = ("PATH", "HOME", "SYSTEMROOT", "TEMP", "TMP", "TMPDIR", "LANG", "LC_ALL")


@pytest.fixture
def repo_copy(tmp_path: Path, sample_landing: Path) -> Path:
    root = tmp_path / "repo"
    copy_packages(root)
    shutil.copy(REPO_ROOT / "pipeline.yaml", root / "pipeline.yaml")
    shutil.copy(REPO_ROOT / ".env.example", root / ".env.example")
    return root


def _run(repo: Path, data_dir: Path, sample_landing: Path, warehouse: Path,
         only: tuple[str, ...] = ("sync", "budget", "export")) -> dict[str, tuple[int, dict, str]]:
    """The three entry points a user reaches first, run from `repo` with only DATA_DIR set."""
    landing = data_dir / "landing"
    if not landing.exists():
        shutil.copytree(sample_landing / "UK", landing / "UK")
        shutil.copytree(sample_landing / "sharepoint", landing / "sharepoint")
    env = {name: os.environ[name] for name in BASE_ENV_NAMES if name in os.environ}
    env["DATA_DIR"] = str(data_dir)
    env["DUCKDB_PATH"] = str(warehouse)
    env["PYTHONPATH"] = copy_import_path(repo)
    python = repo / "bat_file_data_refresh" / "python"
    commands = {
        "sync": [python / "azure_sync" / "sync_azure.py", "--market", "UK", "--dataset", "ingest_orders",
                 "--days-back", "2", "--as-of", SAMPLE_AS_OF.isoformat()],
        "budget": [python / "sharepoint_budget" / "daily_sales_ingest.py", "--year", str(YEAR)],
        "export": [python / "create_hyper_files" / "duckdb_to_tableau_server.py", "--tables", "env_check_sales",
                   "--name", "env_check"],
    }
    results = {}
    for name, command in commands.items():
        if name not in only:
            continue
        done = subprocess.run([sys.executable, *map(str, command)], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=180)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
        summary = json.loads(last.replace(str(data_dir), "<DATA_DIR>")) if last.startswith("{") else {}
        results[name] = (done.returncode, summary, done.stderr)
    return results


def test_copied_env_example_changes_nothing(repo_copy: Path, sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE env_check_sales AS SELECT DATE '2026-11-20' AS order_date, 'UK' AS market, 12.5 AS net")

    without = _run(repo_copy, tmp_path / "data_without", sample_landing, warehouse)
    shutil.copy(repo_copy / ".env.example", repo_copy / ".env")  # what the README says to do first
    with_env = _run(repo_copy, tmp_path / "data_with", sample_landing, warehouse)

    for name in ("sync", "budget", "export"):
        code, summary, stderr = with_env[name]
        assert code == 0, f"{name}: {stderr}"
        assert (code, summary) == without[name][:2], name
        assert "Traceback" not in stderr
    assert with_env["export"][1]["published"] is False
    assert "publishing" in with_env["export"][2].lower() and "skipped" in with_env["export"][2].lower()
    for csv in ("daily_sales_budget", "exchange_rates"):
        relative = Path("raw") / "budget" / f"{csv}_{YEAR}.csv"
        assert (tmp_path / "data_with" / relative).read_bytes() == (tmp_path / "data_without" / relative).read_bytes()

    # The copy's .env is really read: filling in one SharePoint value alone is a half-set group.
    with (repo_copy / ".env").open("a", encoding="utf-8") as handle:
        handle.write("\nSHAREPOINT_SITE_URL=https://contoso.sharepoint.com/sites/Finance\n")
    code, _, stderr = _run(repo_copy, tmp_path / "data_half", sample_landing, warehouse, only=("budget",))["budget"]
    assert code == 78
    assert "SharePoint is half configured: set SHAREPOINT_BUDGET_FOLDER, SHAREPOINT_TENANT_ID" in stderr
