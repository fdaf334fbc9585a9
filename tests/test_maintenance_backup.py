"""The warehouse backup: a real DuckDB copy that opens, is timestamped, and only the newest N stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.maintenance.warehouse_backup import backup_dir, backup_warehouse, build_backup_asset
from pipeline_common.config import load_pipeline_config


def _warehouse(path: Path, rows: int = 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(f"CREATE TABLE marts.sales AS SELECT range AS id, range * 1.5 AS net FROM range({rows})")
        con.execute("CREATE VIEW marts.big_sales AS SELECT * FROM marts.sales WHERE net > 10")
    return path


def test_backup_is_a_complete_openable_database(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb")
    # A committed change that may still sit in the WAL must be in the backup too.
    with duckdb.connect(str(source)) as con:
        con.execute("INSERT INTO marts.sales VALUES (999999, 1.0)")
    path = backup_warehouse(source, tmp_path / "backup", keep=7, now=dt.datetime(2026, 11, 21, 7, 20, 5))
    assert path.name == "analytics_20261121_072005.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.sales").fetchone()[0] == 5001
        assert con.execute("SELECT count(*) FROM marts.big_sales").fetchone()[0] == 5000 - 7  # ids 0-6 have net <= 10
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [path.name]


def test_only_the_newest_backups_are_kept_and_killed_leftovers_go(tmp_path):
    source = _warehouse(tmp_path / "analytics.duckdb", rows=10)
    target = tmp_path / "backup"
    target.mkdir()
    (target / ".analytics_20261101_000000.duckdb.partial").write_bytes(b"half a file")
    (target / "notes.txt").write_text("not a backup")
    start = dt.datetime(2026, 11, 1, 7, 15)
    for day in range(9):
        backup_warehouse(source, target, keep=7, now=start + dt.timedelta(days=day))
    names = sorted(p.name for p in target.iterdir())
    assert names == [f"analytics_202611{d:02d}_071500.duckdb" for d in range(3, 10)] + ["notes.txt"]


def test_missing_warehouse_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no warehouse at .*missing.duckdb"):
        backup_warehouse(tmp_path / "missing.duckdb", tmp_path / "backup", keep=7)
    assert not any((tmp_path / "backup").glob("*.duckdb"))


def test_backup_asset_materializes_into_data_dir(isolated_env):
    _warehouse(isolated_env / "warehouse" / "analytics.duckdb")
    asset = build_backup_asset(load_pipeline_config())
    assert asset.op.pool == "duckdb"
    result = dg.materialize([asset])
    assert result.success
    (materialization,) = result.asset_materializations_for_node("warehouse_backup")
    path = Path(materialization.metadata["backup_path"].value)
    assert path.parent == backup_dir() == isolated_env / "warehouse" / "backup"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.sales").fetchone()[0] == 5000


def test_backup_asset_without_a_warehouse_fails_without_retry(isolated_env):
    asset = build_backup_asset(load_pipeline_config())
    result = dg.materialize([asset], raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("warehouse_backup")
    assert "build it first" in failure.error.message
