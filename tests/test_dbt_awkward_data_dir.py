"""dbt reads the Parquet files from a DATA_DIR whose path has an apostrophe (C:\\Users\\Seán O'Brien),
spaces, `(`, `)`, `&` and non-ASCII letters: the sources' read_parquet('...') literal is escaped."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from tests.plugins.warehouse import dbt_build


def test_a_dbt_build_reads_raw_files_under_a_path_with_an_apostrophe(built_warehouse, tmp_path: Path):
    data_dir = tmp_path / "Seán O'Brien" / "OneDrive - Retail (UK) & Co" / "data"
    shutil.copytree(built_warehouse.data_dir / "raw", data_dir / "raw")
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    done = dbt_build(data_dir, duckdb_path, built_warehouse.landing)  # the whole build: staging tests ref marts
    assert done.returncode == 0, done.stdout[-4000:]
    query = "select count(*) from stg_uk_orders"
    with duckdb.connect(str(duckdb_path), read_only=True) as here, \
            duckdb.connect(str(built_warehouse.duckdb_path), read_only=True) as reference:
        assert here.execute(query).fetchone() == reference.execute(query).fetchone()
        assert here.execute(query).fetchone()[0] > 0
