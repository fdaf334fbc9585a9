"""Blast radius of one: a bad UK cell never holds back DE, IT and JP.

How (docs/rejected_inputs.md, "Blast radius"): the rules the warehouse's staging tests check are
generated from the same declaration the sync enforces, so a file that would fail them is rejected at
the sync, per file: its earlier Parquet stays, the other files and markets sync, and the failure
names the market and the file. The warehouse then builds from last-good UK rows and fresh rows of the
other markets; no staging test fails, so no market's marts or extracts are skipped.

The test runs the real scripts and a real `dbt build`: day 4's UK file carries an empty order_id (the
issue's example), day 4's other files are good.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.plugins.warehouse import dbt_build, ingest, pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"
DAY_4 = dt.date(2026, 11, 20)
DAY_3 = DAY_4 - dt.timedelta(days=1)


def _orders_blob(landing: Path, market: str, day: dt.date) -> Path:
    return landing / market / "raw_data/DWH/Oracle/ingest_orders" / str(day.year) / f"ingest_orders_{day:%Y%m%d}.csv"


def _newest_days(duckdb_path: Path) -> dict[str, dt.date]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return dict(con.execute("select market, max(order_date) from qi_executive_daily_sales group by market").fetchall())


def test_a_bad_uk_cell_keeps_uk_at_its_last_good_day_and_never_holds_back_the_other_markets(tmp_path, isolated_env):
    landing, data_dir = tmp_path / "landing", tmp_path / "data"
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    env = pipeline_env(data_dir, landing, duckdb_path)
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "generate_sample_data.py"), "--days", "4",
                           "--rows-per-day", "60", "--as-of", DAY_4.isoformat(), "--out", str(landing)],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    markets = sorted(p.name for p in landing.iterdir() if (p / "raw_data").is_dir())
    held = tmp_path / "held"
    for market in markets:  # day 4 arrives later
        target = held / market
        target.mkdir(parents=True)
        shutil.move(_orders_blob(landing, market, DAY_4), target / "day4.csv")

    ingest(landing, data_dir, DAY_4.isoformat())
    first = dbt_build(data_dir, duckdb_path, landing)
    assert first.returncode == 0, first.stdout[-4000:]
    assert set(_newest_days(duckdb_path).values()) == {DAY_3}
    uk_day3 = next((data_dir / "raw" / "UK" / "ingest_orders").rglob(f"*{DAY_3:%Y%m%d}.parquet")).read_bytes()

    for market in markets:
        blob = _orders_blob(landing, market, DAY_4)
        shutil.move(held / market / "day4.csv", blob)
        if market == "UK":
            lines = blob.read_text(encoding="utf-8").splitlines()
            cells = lines[5].split(",")
            cells[0] = ""  # order_id empty on line 6
            lines[5] = ",".join(cells)
            blob.write_text("\n".join(lines) + "\n", encoding="utf-8")

    outcomes = {}
    for market in markets:
        done = subprocess.run([sys.executable, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", market,
                               "--dataset", "ingest_orders", "--as-of", DAY_4.isoformat()],
                              env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        outcomes[market] = (done.returncode, json.loads(done.stdout.strip().splitlines()[-1]))
    assert outcomes["UK"][0] == 65
    message = outcomes["UK"][1]["error"]["message"]
    assert f"UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_{DAY_4:%Y%m%d}.csv line 6, column 'order_id'" in message
    assert all(code == 0 for market, (code, _) in outcomes.items() if market != "UK"), outcomes
    assert not list((data_dir / "raw" / "UK" / "ingest_orders").rglob(f"*{DAY_4:%Y%m%d}.parquet"))
    assert next((data_dir / "raw" / "UK" / "ingest_orders").rglob(f"*{DAY_3:%Y%m%d}.parquet")).read_bytes() == uk_day3

    second = dbt_build(data_dir, duckdb_path, landing)
    assert second.returncode == 0, second.stdout[-4000:]  # no staging test fails: nothing is skipped
    newest = _newest_days(duckdb_path)
    assert newest["UK"] == DAY_3
    assert all(newest[m] == DAY_4 for m in markets if m != "UK"), newest
