"""The warehouse backup: incremental and compressed, restored to an identical warehouse, newest N kept.

Classes covered:
- contents: every table of every schema (all column types the warehouse uses, NULLs, duplicates,
  non-ASCII text), views, a committed change still in the WAL -> the restore equals the source;
- history: any sequence of inserts, updates and deletes across months, backed up after each
  change -> every backup restores to the warehouse as it was then (generated, hypothesis);
- growth: a change writes the ISO weeks it touched only (generated); unchanged weeks are hard links,
  so a day's backup costs the changed data, not the history;
- retention and leftovers: newest N kept (older `.duckdb` copies included), a killed backup's
  partial folder goes, a visible backup is always whole; a broken backup never replaces a warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.maintenance.warehouse_backup import backup_dir, backup_warehouse, build_backup_asset, restore_warehouse
from pipeline_common.config import load_pipeline_config

T0 = dt.datetime(2026, 11, 1, 7, 15)


def _warehouse(path: Path, rows: int = 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(
            "CREATE TABLE marts.sales AS SELECT range AS id, DATE '2026-01-01' + CAST(range % 200 AS INTEGER) AS order_date, "
            "CAST(range * 1.5 AS DECIMAL(18, 2)) AS net, TIMESTAMP '2026-01-01 08:00:00' + to_seconds(range) AS ts, "
            "CASE WHEN range % 7 = 0 THEN NULL ELSE '東京-' || range END AS city, range % 3 = 0 AS flag "
            f"FROM range({rows})")
        con.execute("CREATE TABLE main.fx (currency VARCHAR, rate DOUBLE)")  # no DATE column: one partition
        con.execute("INSERT INTO fx VALUES ('EUR', 0.85), ('EUR', 0.85), ('JPY', NULL), (NULL, 1.0)")  # duplicates kept
        con.execute("CREATE TABLE main.empty_one (d DATE, n HUGEINT)")
        con.execute("CREATE VIEW marts.big_sales AS SELECT * FROM marts.sales WHERE net > 10")
    return path


def _tables(path: Path) -> list[tuple[str, str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select schema_name, table_name, string_agg(column_name || ' ' || data_type, ', ' order by column_index) "
            "from duckdb_columns() where database_name = current_database() group by all order by all").fetchall()


def _assert_identical(left: Path, right: Path) -> None:
    """Same tables, same columns and types, same rows (multiset, both ways), same views."""
    assert _tables(left) == _tables(right)
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"ATTACH '{right.as_posix()}' AS other (READ_ONLY)")
        for schema, table, _ in _tables(left):
            a, b = f'select * from "{left.stem}"."{schema}"."{table}"', f'select * from other."{schema}"."{table}"'
            diff = con.execute(f"select (select count(*) from ({a} except all {b})) + "
                               f"(select count(*) from ({b} except all {a}))").fetchone()[0]
            assert diff == 0, f"{schema}.{table} differs by {diff} rows"
        views = "select schema_name, view_name from duckdb_views() where database_name = ? and not internal order by all"
        assert con.execute(views, [left.stem]).fetchall() == con.execute(views, ["other"]).fetchall()


def test_restore_gives_an_identical_warehouse(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb")
    with duckdb.connect(str(source)) as con:  # a committed change that may still sit in the WAL
        con.execute("INSERT INTO marts.sales VALUES (999999, DATE '2027-03-01', 1.00, NULL, 'Zürich', NULL)")
    backup = backup_warehouse(source, tmp_path / "backup", keep=7, now=dt.datetime(2026, 11, 21, 7, 20, 5))
    assert backup.name == "analytics_20261121_072005" and backup.is_dir()
    restored = restore_warehouse(backup, tmp_path / "restored" / "analytics.duckdb")
    _assert_identical(source, restored)
    with duckdb.connect(str(restored), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.big_sales").fetchone()[0] == 5001 - 7 - 1  # ids 0-6 and the 1.00
    # compressed: smaller than the database file it came from
    assert sum(f.stat().st_size for f in backup.rglob("*") if f.is_file()) < source.stat().st_size


def test_a_day_of_changes_writes_only_the_changed_weeks(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb", rows=200_000)  # 200 days of history
    first = backup_warehouse(source, tmp_path / "backup", keep=7, now=T0)
    with duckdb.connect(str(source)) as con:  # a new day (Sunday 19 July), and a line of Monday 13 July re-issued
        con.execute("INSERT INTO marts.sales SELECT 1000000 + range, DATE '2026-07-19', 2.50, NULL, 'new', true FROM range(500)")
        con.execute("UPDATE marts.sales SET net = 0 WHERE id = 193")  # order_date 2026-07-13, the same ISO week
        con.execute("UPDATE marts.sales SET net = 0 WHERE id = 192")  # order_date 2026-07-12, the week before
    second = backup_warehouse(source, tmp_path / "backup", keep=7, now=T0 + dt.timedelta(days=1))
    new = {p.relative_to(second).as_posix() for p in second.rglob("*.parquet") if p.stat().st_nlink == 1}
    assert new == {"marts.sales/2026-07-13.parquet", "marts.sales/2026-07-06.parquet"}
    linked = [p for p in second.rglob("*.parquet") if p.stat().st_nlink == 2]
    for path in linked:  # the very file of the first backup, not a copy
        assert os.path.samefile(path, first / path.relative_to(second))
    day_bytes = sum((second / "marts.sales" / name).stat().st_size for name in ("2026-07-13.parquet", "2026-07-06.parquet"))
    assert day_bytes < 0.10 * source.stat().st_size  # the target: a day's backup under 10 % of the warehouse
    _assert_identical(source, restore_warehouse(second, tmp_path / "r.duckdb"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changed=st.lists(st.integers(0, 199), min_size=1, max_size=6))
def test_a_backup_writes_exactly_the_weeks_whose_rows_changed(tmp_path_factory, changed):
    work = tmp_path_factory.mktemp("weeks")
    source = _warehouse(work / "analytics.duckdb", rows=2_000)  # order dates 2026-01-01 + 0..199 days
    backup_warehouse(source, work / "backup", keep=7, now=T0)
    with duckdb.connect(str(source)) as con:
        for offset in changed:
            con.execute(f"UPDATE marts.sales SET net = net + 1 WHERE id = {offset}")
    second = backup_warehouse(source, work / "backup", keep=7, now=T0 + dt.timedelta(days=1))
    written = {p.name for p in (second / "marts.sales").glob("*.parquet") if p.stat().st_nlink == 1}
    monday = lambda d: d - dt.timedelta(days=d.weekday())  # noqa: E731
    weeks = {f"{monday(dt.date(2026, 1, 1) + dt.timedelta(days=o)):%Y-%m-%d}.parquet" for o in changed}
    assert written == weeks
    assert all(p.stat().st_nlink == 2 for p in second.rglob("*.parquet") if p.parent.name != "marts.sales")


CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 23), st.integers(1, 30)),  # month offset, rows
        st.tuples(st.just("update"), st.integers(0, 23), st.integers(1, 30)),
        st.tuples(st.just("delete"), st.integers(0, 23), st.integers(1, 30)),
        st.tuples(st.just("fx"), st.integers(0, 5), st.integers(1, 3)),
    ),
    min_size=1, max_size=5,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES)
def test_every_backup_restores_the_warehouse_as_it_was(tmp_path_factory, changes):
    work = tmp_path_factory.mktemp("history")
    source = _warehouse(work / "analytics.duckdb", rows=3000)
    snapshots = []
    for step, (kind, month, count) in enumerate(changes):
        day = f"DATE '2025-06-01' + INTERVAL {month} MONTH"
        with duckdb.connect(str(source)) as con:
            if kind == "insert":
                con.execute(f"INSERT INTO marts.sales SELECT 10000 * {step + 1} + range, CAST({day} AS DATE), 1.25, NULL, "
                            f"'x', false FROM range({count})")
            elif kind == "update":
                con.execute(f"UPDATE marts.sales SET net = net + 1 WHERE date_trunc('month', order_date) = {day} "
                            f"AND id % {count} = 0")
            elif kind == "delete":
                con.execute(f"DELETE FROM marts.sales WHERE date_trunc('month', order_date) = {day} AND id % {count + 1} = 1")
            else:
                con.execute(f"INSERT INTO fx SELECT 'C{month}', {count}.5 FROM range({count})")
        backup = backup_warehouse(source, work / "backup", keep=10, now=T0 + dt.timedelta(days=step))
        frozen = work / f"state_{step}.duckdb"
        with duckdb.connect(str(source)) as con:
            con.execute("CHECKPOINT")
        shutil.copy2(source, frozen)
        snapshots.append((backup, frozen))
    for backup, frozen in snapshots:
        _assert_identical(frozen, restore_warehouse(backup, work / f"restored_{backup.name}.duckdb"))


def test_only_the_newest_backups_are_kept_and_killed_leftovers_go(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb", rows=10)
    target = tmp_path / "backup"
    target.mkdir()
    (target / ".analytics_20261031_000000.partial").mkdir()  # a killed backup
    (target / ".analytics_20261031_000000.partial" / "manifest.json").write_text("{}")
    (target / "analytics_20261030_071500.duckdb").write_bytes(b"an older full copy")  # before this format
    (target / "notes.txt").write_text("not a backup")
    for day in range(9):
        backup_warehouse(source, target, keep=7, now=T0 + dt.timedelta(days=day))
    names = sorted(p.name for p in target.iterdir())
    assert names == [f"analytics_202611{d:02d}_071500" for d in range(3, 10)] + ["notes.txt"]
    _assert_identical(source, restore_warehouse(target / "analytics_20261103_071500", tmp_path / "r.duckdb"))


def test_missing_warehouse_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no warehouse at .*missing.duckdb"):
        backup_warehouse(tmp_path / "missing.duckdb", tmp_path / "backup", keep=7)
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())


def test_a_broken_backup_never_replaces_the_warehouse(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb", rows=1000)
    backup = backup_warehouse(source, tmp_path / "backup", keep=7, now=T0)
    target = tmp_path / "live.duckdb"
    shutil.copy2(source, target)
    before = target.read_bytes()
    next(backup.rglob("*.parquet")).unlink()
    with pytest.raises(Exception):
        restore_warehouse(backup, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left
    with pytest.raises(FileNotFoundError, match="not a warehouse backup"):
        restore_warehouse(tmp_path, target)


def test_backup_asset_materializes_into_data_dir(isolated_env):
    source = _warehouse(isolated_env / "warehouse" / "analytics.duckdb")
    asset = build_backup_asset(load_pipeline_config())
    assert asset.op.pool == "duckdb"
    result = dg.materialize([asset])
    assert result.success
    (materialization,) = result.asset_materializations_for_node("warehouse_backup")
    path = Path(materialization.metadata["backup_path"].value)
    assert path.parent == backup_dir() == isolated_env / "warehouse" / "backup"
    assert json.loads((path / "manifest.json").read_text())["bytes_linked"] == 0  # the first one is whole
    _assert_identical(source, restore_warehouse(path, isolated_env / "restored.duckdb"))


def test_backup_asset_without_a_warehouse_fails_without_retry(isolated_env):
    asset = build_backup_asset(load_pipeline_config())
    result = dg.materialize([asset], raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("warehouse_backup")
    assert "build it first" in failure.error.message


def test_restore_script_puts_the_newest_backup_back_and_says_when_there_is_none(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    live = data / "warehouse" / "analytics.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("DUCKDB_PATH", "PIPELINE_CONFIG")}
    env["DATA_DIR"] = str(data)
    script = [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "restore_warehouse.py")]
    none = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert none.returncode == 78 and "no backup in" in none.stderr
    _warehouse(live, rows=2000)
    backup_warehouse(live, data / "warehouse" / "backup", keep=7, now=T0)
    with duckdb.connect(str(live)) as con:
        con.execute("INSERT INTO fx VALUES ('after', 2.0)")
    expected = tmp_path / "expected.duckdb"
    shutil.copy2(live, expected)
    backup_warehouse(live, data / "warehouse" / "backup", keep=7, now=T0 + dt.timedelta(days=1))
    with duckdb.connect(str(live)) as con:  # damage after the newest backup
        con.execute("DROP TABLE marts.sales CASCADE")
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _assert_identical(expected, live)
