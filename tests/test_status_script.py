"""scripts/status.py (contract section 9) on a real Dagster instance and files synced by the real sync
script: all current exits 0; DE's newest file missing exits 1 and names DE and the date; --json agrees."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline_common.settings import repo_root
from tests.plugins.azurite import LandingTree, run_sync_script

STATUS = repo_root() / "scripts" / "status.py"
EXPORTS = ["tableau_executive_daily_sales", "daily_sales_tableau_export"]
MARKETS = ["UK", "DE", "IT", "JP"]
AT = "2026-11-30T07:45"  # London; the expected file date is 2026-11-29
EXPECTED = dt.date(2026, 11, 29)


def _status(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STATUS), "--dagster-home", str(home), "--at", AT, *args],
        cwd=repo_root(), capture_output=True, text=True, timeout=180, encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "cp1252"},  # a Windows console's encoding
    )


def _sync(market: str) -> None:
    result = run_sync_script("--market", market, "--dataset", "ingest_orders", "--as-of", EXPECTED.isoformat(), "--days-back", "3")
    assert result.returncode == 0, result.stderr


def _rebuild_exports(home: Path) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for asset in EXPORTS:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


def test_status_current_then_de_file_missing(home: Path, sync_landing: LandingTree) -> None:
    for market in MARKETS:
        for day in (EXPECTED - dt.timedelta(days=1), EXPECTED):
            sync_landing.write_orders(market, day, rows=3)
        _sync(market)

    _rebuild_exports(home)
    current = _status(home)
    assert current.returncode == 0, current.stdout + current.stderr
    lines = current.stdout.splitlines()
    assert lines[0] == "CURRENT"
    for market in MARKETS:
        row = next(line for line in lines if line.strip().startswith(f"{market} ingest_orders"))
        assert row.split()[2:4] == ["2026-11-29", "2026-11-29"]  # data through, expected
    for name in ("executive_daily_sales", "daily_sales_summary"):
        row = next(line for line in lines if line.strip().startswith(name))
        assert "2026-11-29" in row and "never" not in row

    # DE's newest file is withdrawn from the source and its Parquet is gone: DE is late.
    data = Path(os.environ["DATA_DIR"])
    sync_landing.path("DE/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20261129.csv").unlink()
    (data / "raw" / "DE" / "ingest_orders" / "2026" / "ingest_orders_20261129.parquet").unlink()
    late = _status(home)
    assert late.returncode == 1
    first = late.stdout.splitlines()[0]
    assert first.startswith("NOT CURRENT: DE ingest_orders: file for 2026-11-29 not arrived (due 06:30)"), first
    assert "UK" not in first and "IT" not in first and "JP" not in first

    as_json = _status(home, "--json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["current"] is False and document["headline"] == first
    late_sources = [s for s in document["sources"] if not s["current"]]
    assert [(s["market"], s["expected_date"], s["data_through"], s["reason"]) for s in late_sources] == [
        ("DE", "2026-11-29", "2026-11-28", "not arrived")
    ]
    assert all(not e["current"] and e["late_sources"] == ["DE ingest_orders"] for e in document["exports"])


def test_status_rejects_a_bad_time(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(STATUS), "--dagster-home", str(home), "--at", "30/11/2026 07:30"],
        cwd=repo_root(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 78
    assert "expected YYYY-MM-DDTHH:MM" in result.stderr
