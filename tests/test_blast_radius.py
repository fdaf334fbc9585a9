"""Blast radius of one: a bad UK cell never holds back DE, IT and JP.

At the sync (docs/rejected_inputs.md, "Blast radius"): the rules the warehouse's staging tests check are
generated from the same declaration the sync enforces, so a file that would fail them is rejected at
the sync, per file: its earlier Parquet stays, the other files and markets sync, and the failure
names the market and the file. The warehouse then builds from last-good UK rows and fresh rows of the
other markets; no staging test fails, so no market's marts or extracts are skipped.

The test runs the real scripts and a real `dbt build`: day 4's UK file carries an empty order_id (the
issue's example), day 4's other files are good.

In the warehouse (docs/warehouse.md, "A market that fails a test holds back only itself"): rows that
fail a staging test anyway hold back their own market's gates only; the other markets' marts and
extracts are current, and the failed check names the market and the file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tableauhyperapi import Connection, HyperProcess, Telemetry

from orchestration.alerts.check_alerts import check_message
from orchestration.exports import build_defs as build_export_defs
from orchestration.resources import pipes_subprocess_client
from orchestration.warehouse.assets import DBT_RESOURCE_KEY, build_dbt_assets
from orchestration.warehouse.resource import warehouse_dbt_resource
from pipeline_common.config import load_pipeline_config
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


# --- The warehouse half: a market whose staged data fails a dbt test holds back only itself. ---
#
# The sync would refuse these rows; they are written straight into the raw Parquet (as a file the
# sync let through under older rules, or a rule dbt alone checks would be). The asset runs the real
# two-phase dbt build through Dagster (orchestration/warehouse/gates.py) and the real export.

# One broken value per kind of staging test: (column, value) the staging tests refuse.
BREAKS = {
    "accepted_values": ("status", "LOST"),
    "not_null_columns": ("customer_id", None),
    "within_bounds": ("quantity", 0),
}


def _next_day_files(data_dir: Path, break_market: str | None, column: str | None, value: object,
                    position: int = 0) -> tuple[dt.date, str]:
    """Every market gets a file for the day after its newest: its newest file's lines moved one day on,
    with new ids. In `break_market`'s file line `position` (modulo its length) has `column` = `value`.
    Returns (day, bad blob)."""
    bad_blob = ""
    day = None
    for folder in sorted((data_dir / "raw").glob("*/ingest_orders")):
        market = folder.parent.name
        newest = sorted(folder.rglob("*.parquet"))[-1]
        table = pq.read_table(newest)
        day = pc.max(table["_file_date"]).as_py() + dt.timedelta(days=1)
        blob = f"{market}/raw_data/DWH/Oracle/ingest_orders/{day:%Y}/ingest_orders_{day:%Y%m%d}.csv"
        replace = {
            "_file_date": pa.array([day] * len(table), table["_file_date"].type),
            "order_date": pa.array([day] * len(table), table["order_date"].type),
            "_source_blob": pa.array([blob] * len(table), table["_source_blob"].type),
            "order_line_id": pc.add(table["order_line_id"], 10**9),
            "order_id": pc.add(table["order_id"], 10**9),
        }
        if market == break_market:
            values = table[column].to_pylist()
            values[position % len(values)] = value
            replace[column] = pa.array(values, table[column].type)
            bad_blob = blob
        for name, array in replace.items():
            if name in table.column_names:
                table = table.set_column(table.schema.get_field_index(name), name, array)
        target = folder / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
    return day, bad_blob


def _mart(duckdb_path: Path) -> list[tuple]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.execute("select * from qi_executive_daily_sales order by all").fetchall()


def _extract_newest_days(hyper: Path, tmp_path: Path) -> dict[str, dt.date]:
    logs = tmp_path / "hyper_logs"
    logs.mkdir(exist_ok=True)
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(logs)}) as hp:
        with Connection(hp.endpoint, str(hyper)) as connection:
            rows = connection.execute_list_query('SELECT market, MAX(order_date) FROM "Extract"."Extract" GROUP BY market')
    return {market: dt.date(d.year, d.month, d.day) for market, d in rows}


def _materialize_models_and_extract(tmp_path: Path) -> dg.ExecuteInProcessResult:
    config = load_pipeline_config()
    [export] = [a for a in build_export_defs(config).assets if a.key == dg.AssetKey("tableau_executive_daily_sales")]
    return dg.materialize(
        [build_dbt_assets(config), export],
        resources={DBT_RESOURCE_KEY: warehouse_dbt_resource(), "pipes_subprocess_client": pipes_subprocess_client()},
        raise_on_error=False,
    )


def _warehouse_from(built, data_dir: Path) -> Path:
    shutil.copytree(built.data_dir / "raw", data_dir / "raw")
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    duckdb_path.parent.mkdir(parents=True)
    shutil.copy(built.duckdb_path, duckdb_path)  # the last good warehouse
    return duckdb_path


def _assert_only_market_held(result, duckdb_path: Path, before: list[tuple], market: str, day: dt.date,
                             bad_blob: str, test_kind: str, tmp_path: Path) -> None:
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    after = _mart(duckdb_path)
    newest = {}
    for row in after:
        newest[row[1]] = max(newest.get(row[1], row[0]), row[0])
    assert newest[market] == day - dt.timedelta(days=1), newest
    assert all(d == day for m, d in newest.items() if m != market), newest
    assert [r for r in after if r[1] == market] == [r for r in before if r[1] == market]  # last good state

    failed = [e for e in result.get_asset_check_evaluations()
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert {e.asset_key.to_user_string() for e in failed} == {f"stg_{market.lower()}_orders"}, failed
    [evaluation] = [e for e in failed if e.check_name.startswith(test_kind)]
    assert evaluation.metadata["market"].value == market
    assert bad_blob in evaluation.metadata["files"].value
    run_id = result.run_id
    title, payload = check_message(evaluation, run_id, "http://127.0.0.1:3000")
    text = json.dumps(payload)
    assert market in text and bad_blob in text, text  # the alert names the market and the file

    extract = _extract_newest_days(Path(os.environ["DATA_DIR"]) / "exports" / "executive_daily_sales.hyper", tmp_path)
    assert extract == newest


def test_a_market_failing_a_warehouse_test_holds_back_only_itself(built_warehouse, isolated_env, tmp_path):
    duckdb_path = _warehouse_from(built_warehouse, isolated_env)
    before = _mart(duckdb_path)
    day, bad_blob = _next_day_files(isolated_env, "UK", *BREAKS["accepted_values"])

    result = _materialize_models_and_extract(tmp_path)
    _assert_only_market_held(result, duckdb_path, before, "UK", day, bad_blob, "accepted_values", tmp_path)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "good_uk_orders" not in materialized and "good_de_orders" in materialized

    # UK's corrected file arrives: UK catches up, and the warehouse equals a full rebuild from all files.
    fixed = next((isolated_env / "raw" / "UK" / "ingest_orders").rglob(f"*{day:%Y%m%d}.parquet"))
    table = pq.read_table(fixed)
    table = table.set_column(table.schema.get_field_index("status"), "status",
                             pa.array(["COMPLETED"] + table["status"].to_pylist()[1:], table["status"].type))
    pq.write_table(table, fixed)
    again = _materialize_models_and_extract(tmp_path)
    assert again.success
    caught_up = _mart(duckdb_path)
    assert {r[1] for r in caught_up if r[0] == day} == {r[1] for r in before}
    incremental = duckdb_path.with_name("incremental.duckdb")
    shutil.copy2(duckdb_path, incremental)
    rebuilt = dbt_build(isolated_env, duckdb_path, extra_args=["--full-refresh"])
    assert rebuilt.returncode == 0, rebuilt.stdout[-4000:]
    assert _differing_tables(incremental, duckdb_path) == {}


def _differing_tables(left: Path, right: Path) -> dict[str, int]:
    """{table: rows in one and not the other} over every model table (bookkeeping `_*` aside)."""
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"attach '{right.as_posix()}' as other (read_only)")
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'other' "
            "and table_schema = 'main' and table_type = 'BASE TABLE' and not starts_with(table_name, '_')"
        ).fetchall()]
        assert "good_uk_orders" in tables and "qi_executive_daily_sales" in tables
        differing = {}
        for table in tables:
            a, b = f"main.{table}", f"other.main.{table}"
            count = con.execute(f"select (select count(*) from (from {a} except all from {b})) "
                                f"+ (select count(*) from (from {b} except all from {a}))").fetchone()[0]
            if count:
                differing[table] = count
    return differing

# Longer mode (docs/warehouse.md): BLAST_RADIUS_EXAMPLES=30 .venv/bin/pytest tests/test_blast_radius.py
EXAMPLES = int(os.environ.get("BLAST_RADIUS_EXAMPLES") or 0)


@settings(max_examples=EXAMPLES or 3, deadline=None, derandomize=not EXAMPLES,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(market=st.sampled_from(sorted(d.market for d in load_pipeline_config().datasets if d.dataset == "ingest_orders")),
       kind=st.sampled_from(sorted(BREAKS)), position=st.integers(min_value=0, max_value=10_000))
def test_any_market_failing_any_kind_of_staging_test_holds_back_only_itself(
    built_warehouse, isolated_env, tmp_path_factory, monkeypatch, market, kind, position
):
    """Generated: which market breaks, which kind of staging test it fails, on which line of its file
    (a real Dagster build and export per example: 3 in the suite)."""
    data_dir = tmp_path_factory.mktemp(f"blast_{market}_{kind}")
    with monkeypatch.context() as patch:
        patch.setenv("DATA_DIR", str(data_dir))
        duckdb_path = _warehouse_from(built_warehouse, data_dir)
        before = _mart(duckdb_path)
        day, bad_blob = _next_day_files(data_dir, market, *BREAKS[kind], position=position)
        result = _materialize_models_and_extract(data_dir)
        _assert_only_market_held(result, duckdb_path, before, market, day, bad_blob, kind, data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
