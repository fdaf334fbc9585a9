"""scripts/status.py reads a real Dagster instance: stale exports exit 1, fresh ones exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipeline_common.settings import repo_root

STATUS = repo_root() / "scripts" / "status.py"
EXPORTS = ["tableau_executive_daily_sales", "daily_sales_tableau_export"]


def _status(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STATUS), "--dagster-home", str(home)],
        cwd=repo_root(), capture_output=True, text=True, timeout=180,
    )


def test_status_reports_stale_then_fresh_exports(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    stale = _status(home)
    assert stale.returncode == 1, stale.stderr
    assert "[azure_ingestion_orders]" in stale.stdout and "uk_orders_azure" in stale.stdout
    for export in EXPORTS:
        assert any(line.split()[:2] == [export, "STALE"] for line in stale.stdout.splitlines()), stale.stdout

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=EXPORTS[0]))
    half = _status(home)
    assert half.returncode == 1
    lines = {line.split()[0]: line.split()[1] for line in half.stdout.splitlines()[-2:]}
    assert lines == {EXPORTS[0]: "fresh", EXPORTS[1]: "STALE"}

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=EXPORTS[1]))
    fresh = _status(home)
    assert fresh.returncode == 0, fresh.stdout
    assert "never" not in next(line for line in fresh.stdout.splitlines() if line.strip().startswith(EXPORTS[1]))
