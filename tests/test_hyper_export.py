"""The export script builds real .hyper files whose tables, types and values match the DuckDB warehouse.

The rules run the script's main in this process (`export_here`); the real script stays for --help and the
runs inside a Dagster run of an asset (the `run_export` fixture)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from tableauhyperapi import Connection, HyperProcess, Telemetry

from create_hyper_files.extract_backups import BACKUPS_KEPT
from tests.plugins.in_process import InProcessRun, run_main
from tests.plugins.tableau_server import AS_DAGSTER_ASSET, summary


def export_here(*args: str, env: dict[str, str] | None = None) -> InProcessRun:
    """The export script's main in this process (tests/plugins/in_process.py): for its rules (types, refused
    dates, unknown tables, the warehouse lock), not its command line; the `run_export` fixture runs the real
    script (--help, and every run inside a Dagster run of an asset)."""
    from create_hyper_files import duckdb_to_tableau_server

    return run_main(duckdb_to_tableau_server.main, args, env)


def read_hyper(path: Path, work_dir: Path) -> dict[str, dict]:
    """Every table of a .hyper: its column names and types, and its rows."""
    work_dir.mkdir(exist_ok=True)
    tables: dict[str, dict] = {}
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(work_dir)}) as hyper:
        with Connection(hyper.endpoint, str(path)) as connection:
            for schema in connection.catalog.get_schema_names():
                for table in connection.catalog.get_table_names(schema):
                    definition = connection.catalog.get_table_definition(table)
                    key = f"{schema.name.unescaped}.{table.name.unescaped}"
                    tables[key] = {
                        "columns": {c.name.unescaped: str(c.type) for c in definition.columns},
                        "rows": connection.execute_list_query(f"SELECT * FROM {table}"),
                    }
    return tables


def duckdb_rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _plain(value):
    """Hyper's Date/Timestamp values as Python's, so rows compare with DuckDB's."""
    if hasattr(value, "to_datetime"):
        return value.to_datetime()
    if hasattr(value, "to_date"):
        return value.to_date()
    return value


def test_one_table_becomes_extract_extract_with_tableau_types_and_equal_values(
    export_warehouse, run_export, isolated_env, tmp_path
):
    result = run_export("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales", AS_DAGSTER_ASSET, "--no-publish")
    assert result.returncode == 0, result.stderr

    hyper_path = isolated_env / "exports" / "executive_daily_sales.hyper"
    assert summary(result.stdout) == {
        "name": "executive_daily_sales", "tables": {"qi_executive_daily_sales": 4},
        "hyper_path": str(hyper_path), "published": False,
    }
    tables = read_hyper(hyper_path, tmp_path / "hyper")
    assert list(tables) == ["Extract.Extract"]
    extract = tables["Extract.Extract"]
    assert extract["columns"] == {
        "order_date": "DATE", "market": "TEXT", "net_sales_gbp": "NUMERIC(18, 2)", "budget_gbp": "NUMERIC(18, 2)",
        "variance_pct": "DOUBLE", "orders": "BIG_INT", "units": "BIG_INT", "new_customers": "INT", "store": "TEXT",
    }
    expected = duckdb_rows(export_warehouse, "SELECT * FROM qi_executive_daily_sales ORDER BY order_date, market")
    actual = sorted(([_plain(v) for v in row] for row in extract["rows"]), key=lambda r: (r[0], r[1]))
    assert actual == [list(row) for row in expected]
    by_market = {row[1]: row for row in actual}
    assert by_market["JP"][8] == "東京" and by_market["UK"][8] == "Zürich"
    assert by_market["JP"][2] == Decimal("987654321.99") and by_market["IT"][0] == dt.date(2024, 2, 29)
    assert by_market["DE"][8] is None and by_market["IT"][3] is None


def test_several_tables_keep_their_names_and_row_counts(export_warehouse, run_export, isolated_env, tmp_path):
    result = export_here(
        "--tables", "qi_executive_daily_sales", "int_orders_summary_daily", "--name", "sales_pack", "--no-publish"
    )
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["tables"] == {"qi_executive_daily_sales": 4, "int_orders_summary_daily": 1000}
    tables = read_hyper(isolated_env / "exports" / "sales_pack.hyper", tmp_path / "hyper")
    assert sorted(tables) == ["Extract.int_orders_summary_daily", "Extract.qi_executive_daily_sales"]
    summary_rows = tables["Extract.int_orders_summary_daily"]["rows"]
    assert len(summary_rows) == 1000
    total = duckdb_rows(export_warehouse, "SELECT sum(net_sales_local), count(DISTINCT order_date) FROM int_orders_summary_daily")
    assert sum(row[4] for row in summary_rows) == total[0][0]
    assert len({row[0] for row in summary_rows}) == total[0][1]


def test_types_hyper_cannot_read_are_cast_to_what_tableau_users_expect(
    isolated_env, run_export, monkeypatch, tmp_path
):
    warehouse = isolated_env / "odd.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            """
            CREATE TABLE "odd ""types"" table" AS SELECT
                123456789012.34::DECIMAL(38,2) AS "wide money",
                1e25::DECIMAL(38,2) AS too_wide,
                170141183460469231731687303715884105727::HUGEINT AS huge,
                42::HUGEINT AS summed_units,
                TIMESTAMPTZ '2026-07-01 12:00:00+00' AS ts_tz,
                '3c0d1a5e-6b1e-4a4b-9c59-0f6c1c8d2a10'::UUID AS id,
                '{"a": [1, 2]}'::JSON AS payload,
                3::TINYINT AS tiny,
                [1, 2]::INTEGER[] AS list_col
            """
        )
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    result = export_here("--tables", 'odd "types" table', "--name", "odd", "--no-publish")
    assert result.returncode == 0, result.stderr
    extract = read_hyper(isolated_env / "exports" / "odd.hyper", tmp_path / "hyper")["Extract.Extract"]
    assert extract["columns"] == {
        "wide money": "NUMERIC(18, 2)", "too_wide": "DOUBLE", "huge": "DOUBLE", "summed_units": "BIG_INT",
        "ts_tz": "TIMESTAMP", "id": "TEXT", "payload": "TEXT", "tiny": "SMALL_INT", "list_col": "TEXT",
    }
    row = [_plain(v) for v in extract["rows"][0]]
    assert row[0] == Decimal("123456789012.34") and row[1] == pytest.approx(1e25) and row[3] == 42
    # TIMESTAMPTZ becomes the wall-clock time in the business time zone (BST in July).
    assert row[4] == dt.datetime(2026, 7, 1, 13, 0, 0)
    assert row[5] == "3c0d1a5e-6b1e-4a4b-9c59-0f6c1c8d2a10" and json.loads(row[6]) == {"a": [1, 2]}


def _calendar_warehouse(isolated_env: Path, monkeypatch, valid_to: str) -> Path:
    """A warehouse whose `subscriptions` table has one row ending on `valid_to` (an SCD-style table)."""
    warehouse = isolated_env / "calendar.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE OR REPLACE TABLE subscriptions AS SELECT * FROM (VALUES "
            "(1, DATE '2026-01-01', DATE '2026-06-30', TIMESTAMP '2026-01-01 09:00:00'), "
            f"(2, DATE '2026-07-01', {valid_to}, TIMESTAMP '2026-07-01 09:00:00')"
            ") AS t(id, valid_from, valid_to, signed_up_at)"
        )
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    return warehouse


@pytest.mark.parametrize("source", ["table", "sql"])
def test_dates_tableau_cannot_store_are_refused_naming_the_column_and_the_earlier_extract_survives(
    isolated_env, run_export, monkeypatch, source
):
    # An open-ended row (valid_to = 'infinity') is common in DuckDB; Hyper cannot store it.
    _calendar_warehouse(isolated_env, monkeypatch, "DATE '2026-12-31'")
    good = export_here("--tables", "subscriptions", "--name", "subscriptions", "--no-publish")
    assert good.returncode == 0, good.stderr
    extract = isolated_env / "exports" / "subscriptions.hyper"
    before = extract.read_bytes()

    _calendar_warehouse(isolated_env, monkeypatch, "DATE 'infinity'")
    args = ["--tables", "subscriptions"] if source == "table" else ["--sql", "SELECT * FROM subscriptions"]
    for extra in (["--dry-run"], ["--no-publish"]):
        refused = export_here(*args, "--name", "subscriptions", *extra)
        assert refused.returncode == 65, refused.stderr
        message = summary(refused.stdout)["error"]["message"]
        assert message.startswith("table main.subscriptions:" if source == "table" else "--sql:")
        assert "column 'valid_to': 1 row(s) with a date Tableau cannot store (infinity)" in message
        assert "4713 BC" in message and "294276" in message and "parquet" not in message.lower()
    assert extract.read_bytes() == before
    assert sorted(p.name for p in (isolated_env / "exports").iterdir()) == ["backup", "subscriptions.hyper"]


def test_a_timestamp_before_hypers_first_day_is_refused_and_the_calendars_ends_load(
    isolated_env, run_export, monkeypatch, tmp_path
):
    _calendar_warehouse(isolated_env, monkeypatch, "DATE '2026-12-31'")
    too_early = export_here(
        "--sql", "SELECT id, TIMESTAMP '-infinity' AS since FROM subscriptions", "--name", "early", "--no-publish"
    )
    assert too_early.returncode == 65, too_early.stderr
    assert "column 'since': 2 row(s) with a date Tableau cannot store (-infinity)" in too_early.stderr

    ends = export_here(
        "--sql",
        "SELECT DATE '4713-01-01 (BC)' AS first_day, DATE '294276-12-31' AS last_day, "
        "CAST(DATE '4713-01-01 (BC)' AS TIMESTAMP) AS first_moment",
        "--name", "calendar_ends", "--no-publish",
    )
    assert ends.returncode == 0, ends.stderr
    table = read_hyper(isolated_env / "exports" / "calendar_ends.hyper", tmp_path / "hyper")["Extract.Extract"]
    assert table["columns"] == {"first_day": "DATE", "last_day": "DATE", "first_moment": "TIMESTAMP"}
    [(first_day, last_day, first_moment)] = table["rows"]
    assert (last_day.year, last_day.month, last_day.day) == (294276, 12, 31)
    assert (first_day.year, first_day.month, first_day.day) == (-4712, 1, 1)  # 4713 BC: there is no year 0
    moment_day = first_moment.date()
    assert (moment_day.year, moment_day.month, moment_day.day, first_moment.hour) == (-4712, 1, 1, 0)


def test_unknown_table_is_rejected_before_anything_is_written(export_warehouse, run_export, isolated_env):
    good = run_export("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales", AS_DAGSTER_ASSET, "--no-publish")
    assert good.returncode == 0, good.stderr
    extract = isolated_env / "exports" / "executive_daily_sales.hyper"
    before = extract.read_bytes()
    backups_before = sorted(p.name for p in (isolated_env / "exports" / "backup").iterdir())

    bad = export_here(
        "--tables", "qi_executive_daily_sale", "--name", "my_executive", "--no-publish"
    )
    assert bad.returncode == 65
    assert "unknown table 'qi_executive_daily_sale'" in bad.stderr
    assert "nearest: qi_executive_daily_sales" in bad.stderr
    assert extract.read_bytes() == before
    assert sorted(p.name for p in (isolated_env / "exports" / "backup").iterdir()) == backups_before
    assert sorted(p.name for p in (isolated_env / "exports").iterdir()) == ["backup", "executive_daily_sales.hyper"]


def test_sql_in_a_table_name_is_only_ever_a_name(export_warehouse, run_export, isolated_env):
    result = export_here("--tables", "qi_executive_daily_sales; DROP TABLE int_orders_summary_daily", "--name", "x",
                        "--no-publish")
    assert result.returncode == 65
    assert duckdb_rows(export_warehouse, "SELECT count(*) FROM int_orders_summary_daily") == [(1000,)]
    assert not (isolated_env / "exports" / "x.hyper").exists()


def _hold_write_lock(warehouse: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
         "time.sleep(float(sys.argv[2]))", str(warehouse), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_export_waits_while_another_process_holds_the_warehouse_lock(export_warehouse, run_export, isolated_env):
    holder = _hold_write_lock(export_warehouse, 4)
    try:
        started = time.monotonic()
        result = export_here("--tables", "qi_executive_daily_sales", "--name", "waited", "--no-publish",
                            env={"EXPORT_LOCK_TIMEOUT_SECONDS": "60"})
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert "locked by another process; retrying" in result.stderr
    assert elapsed >= 2
    assert summary(result.stdout)["tables"] == {"qi_executive_daily_sales": 4}


def test_export_gives_up_with_exit_75_when_the_lock_outlasts_the_limit(export_warehouse, run_export, isolated_env):
    holder = _hold_write_lock(export_warehouse, 120)
    try:
        result = export_here("--tables", "qi_executive_daily_sales", "--name", "blocked", "--no-publish",
                            "--lock-timeout", "2")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75
    assert "stayed locked by another process for 2 s" in result.stderr
    exports = isolated_env / "exports"
    assert not exports.exists() or [p.name for p in exports.iterdir()] == []


def test_backups_keep_exactly_the_newest_fourteen_per_name(export_warehouse, run_export, isolated_env):
    backup_dir = isolated_env / "exports" / "backup"
    backup_dir.mkdir(parents=True)
    old = [backup_dir / f"executive_daily_sales_202601{day:02d}_073000.hyper" for day in range(1, 17)]
    other = backup_dir / "executive_daily_sales_uk_20250101_000000.hyper"
    for path in [*old, other]:
        path.write_bytes(b"old")

    result = run_export("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales", AS_DAGSTER_ASSET, "--no-publish")
    assert result.returncode == 0, result.stderr

    kept = sorted(p.name for p in backup_dir.glob("executive_daily_sales_2*.hyper"))
    assert len(kept) == BACKUPS_KEPT == 14
    newest = kept[-1]
    assert (backup_dir / newest).read_bytes() == (isolated_env / "exports" / "executive_daily_sales.hyper").read_bytes()
    # the 13 newest old ones survive, the 3 oldest are gone
    assert kept[:-1] == [p.name for p in old[3:]]
    assert other.exists()


def test_publishing_skipped_is_said_once_and_work_files_are_cleaned_up(export_warehouse, run_export, isolated_env):
    result = run_export("--tables", "int_orders_summary_daily", "--name", "daily_sales_summary", AS_DAGSTER_ASSET)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Tableau publishing skipped") == 1
    assert summary(result.stdout)["published"] is False
    leftovers = [p.name for p in (isolated_env / "exports").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert not list(Path.cwd().glob("hyperd*.log"))


def test_help_shows_examples_without_touching_the_warehouse(run_export, isolated_env, tmp_path):
    # A warehouse path that is not a DuckDB file: opening it, or creating anything, would show.
    warehouse = tmp_path / "not_a_warehouse.duckdb"
    warehouse.write_bytes(b"not a duckdb file")
    result = run_export("--help", env={"DUCKDB_PATH": str(warehouse)})
    assert result.returncode == 0, result.stderr
    assert "--no-publish" in result.stdout and "examples:" in result.stdout
    assert warehouse.read_bytes() == b"not a duckdb file"
    assert sorted(tmp_path.iterdir()) == sorted([warehouse, isolated_env])
    assert list(isolated_env.iterdir()) == []  # nothing under DATA_DIR: no exports, no lock, no backup
