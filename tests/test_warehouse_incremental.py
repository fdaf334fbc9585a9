"""The incremental warehouse equals a full rebuild after every kind of change (dbt/macros/incremental.sql).

Real dbt runs on real DuckDB files over the session's synced sample data: after each change the
incremental build's tables are compared, row for row, with a `--full-refresh` build of the same files.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.plugins.warehouse import REPO_ROOT, pipeline_env

from azure_sync.outputs import write_parquet  # (the sync's own writer: atomic, with a write id)

ORDERS = "ingest_orders"
MARTS = ("int_orders_summary_daily", "qi_executive_daily_sales", "uk_commercial_customer_daily")


class Warehouse:
    """A private copy of the dbt project and of the synced raw files, built with `dbt run`."""

    def __init__(self, root: Path, raw: Path):
        self.project = root / "dbt"
        shutil.copytree(REPO_ROOT / "dbt", self.project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
        self.data_dir = root / "data"
        shutil.copytree(raw, self.data_dir / "raw")
        self.duckdb_path = self.data_dir / "warehouse" / "analytics.duckdb"
        self.duckdb_path.parent.mkdir(parents=True)
        self.env = pipeline_env(self.data_dir, root / "landing", self.duckdb_path)
        self.env["DBT_TARGET_PATH"] = str(root / "target")
        self.env["DBT_LOG_PATH"] = str(root / "logs")

    def dbt(self, *args: str) -> str:
        from orchestration.warehouse.project import dbt_executable

        done = subprocess.run(
            [dbt_executable(), "run", "--project-dir", str(self.project), "--profiles-dir", str(self.project), *args],
            env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, f"dbt run {' '.join(args)} failed:\n{done.stdout[-5000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
            return con.execute(sql).fetchall()

    def last_builds(self) -> dict[str, str]:
        return dict(self.query("select model, last_build from _warehouse_state"))

    def orders_files(self, market: str) -> list[Path]:
        return sorted((self.data_dir / "raw" / market / ORDERS).glob("*/*.parquet"))

    def assert_incremental_equals_full_rebuild(self, expect_incremental: tuple[str, ...] = MARTS) -> None:
        """Build incrementally, keep that warehouse, rebuild it in full, compare every model table."""
        self.dbt()
        builds = self.last_builds()
        for model in expect_incremental:
            assert builds[model] == "incremental", f"{model} was rebuilt in full, not incrementally: {builds}"
        incremental = self.duckdb_path.with_name("incremental.duckdb")
        shutil.copy2(self.duckdb_path, incremental)
        self.dbt("--full-refresh")
        differences = differing_rows(incremental, self.duckdb_path)
        assert not any(differences.values()), f"incremental build differs from a full rebuild: {differences}"
        # Carry on from the incremental state, so the next change is applied incrementally on top of it.
        shutil.copy2(incremental, self.duckdb_path)
        incremental.unlink()


def differing_rows(left: Path, right: Path) -> dict[str, int]:
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"attach '{right.as_posix()}' as other (read_only)")
        tables = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'other' and table_schema = 'main' "
            "and table_type = 'BASE TABLE' and not starts_with(table_name, '_warehouse') order by 1").fetchall()]
        assert set(MARTS) <= set(tables)
        out = {}
        for table in tables:
            a, b = f"main.{table}", f"other.main.{table}"
            out[table] = con.execute(
                f"select (select count(*) from (from {a} except all from {b})) "
                f"+ (select count(*) from (from {b} except all from {a}))").fetchone()[0]
        return out


def write_orders_file(path: Path, table: pa.Table, file_date: dt.date, market: str) -> None:
    """A synced orders file as the sync writes it (lineage columns set for its date)."""
    rows = table.num_rows
    blob = f"{market}/raw_data/DWH/Oracle/{ORDERS}/{file_date:%Y}/{ORDERS}_{file_date:%Y%m%d}.csv"
    table = table.set_column(table.schema.get_field_index("_file_date"), "_file_date",
                             pa.array([file_date] * rows, pa.date32()))
    table = table.set_column(table.schema.get_field_index("_source_blob"), "_source_blob",
                             pa.array([blob] * rows, pa.string()))
    write_parquet(table, path)


def orders_path(data_dir: Path, market: str, file_date: dt.date) -> Path:
    return data_dir / "raw" / market / ORDERS / f"{file_date:%Y}" / f"{ORDERS}_{file_date:%Y%m%d}.parquet"


def set_status(table: pa.Table, positions: list[int], status: str) -> pa.Table:
    statuses = table["status"].to_pylist()
    for position in positions:
        statuses[position] = status
    return table.set_column(table.schema.get_field_index("status"), "status", pa.array(statuses, pa.string()))


@pytest.fixture
def warehouse(built_warehouse, tmp_path) -> Warehouse:
    built = Warehouse(tmp_path, built_warehouse.data_dir / "raw")
    built.dbt()
    assert set(built.last_builds().values()) == {"full"}
    return built


def test_incremental_build_equals_full_rebuild_after_each_kind_of_change(warehouse: Warehouse):
    w = warehouse
    newest = pc.max(pq.read_table(w.orders_files("UK")[-1])["_file_date"]).as_py()

    # A new day: each market's next file, with its own new lines and re-issues of earlier lines.
    new_day = newest + dt.timedelta(days=1)
    for market in ("UK", "DE", "IT", "JP"):
        previous = pq.read_table(w.orders_files(market)[-1])
        fresh = previous.slice(0, 40)
        for column in ("order_id", "order_line_id"):
            fresh = fresh.set_column(fresh.schema.get_field_index(column), column,
                                     pc.add(fresh[column], pa.scalar(10_000_000, pa.int64())))
        fresh = fresh.set_column(fresh.schema.get_field_index("order_date"), "order_date",
                                 pa.array([new_day] * fresh.num_rows, pa.date32()))
        reissued = set_status(previous.slice(100, 5), [0, 1, 2, 3, 4], "RETURNED")
        write_orders_file(orders_path(w.data_dir, market, new_day), pa.concat_tables([fresh, reissued]), new_day, market)
    w.assert_incremental_equals_full_rebuild()

    # A re-issued line with a new status in a later file (a line first sent several days ago).
    later = new_day + dt.timedelta(days=1)
    oldest_uk = pq.read_table(w.orders_files("UK")[0])
    line = set_status(oldest_uk.slice(3, 1), [0], "CANCELLED")
    write_orders_file(orders_path(w.data_dir, "UK", later), line, later, "UK")
    w.assert_incremental_equals_full_rebuild()
    cancelled = w.query(f"select status from stg_uk_orders where order_line_id = {line['order_line_id'][0].as_py()}")
    assert cancelled == [("CANCELLED",)]

    # A corrected earlier file: same path, some statuses changed and one line withdrawn.
    corrected_path = w.orders_files("IT")[2]
    corrected = pq.read_table(corrected_path)
    withdrawn = corrected["order_line_id"][0].as_py()
    corrected = set_status(corrected, [5, 6, 7], "CANCELLED").slice(1)
    write_parquet(corrected, corrected_path)
    w.assert_incremental_equals_full_rebuild()
    assert w.query(f"select count(*) from stg_it_orders where order_line_id = {withdrawn}") in ([(0,)], [(1,)])

    # A file leaving the window: the oldest DE file is removed from raw/.
    oldest_de = w.orders_files("DE")[0]
    gone_date = pq.read_table(oldest_de)["order_date"][0].as_py()
    oldest_de.unlink()
    w.assert_incremental_equals_full_rebuild()
    assert w.query(f"select count(*) from qi_executive_daily_sales where market = 'DE' and order_date = '{gone_date}'") \
        in ([(0,)], [(1,)])


def test_new_market_and_model_edits_rebuild_in_full(warehouse: Warehouse, tmp_path: Path):
    from scripts.dev import generate_dbt_staging

    from pipeline_common.config import config_path, load_pipeline_config

    w = warehouse
    # A new market: configured in pipeline.yaml, its staging generated, its first files synced.
    text = config_path().read_text(encoding="utf-8")
    text = text.replace("  JP: {currency: JPY}\n", "  JP: {currency: JPY}\n  FR: {currency: EUR}\n")
    text = text.replace("  - {market: JP, dataset: ingest_orders, days_back: 30}\n",
                        "  - {market: JP, dataset: ingest_orders, days_back: 30}\n"
                        "  - {market: FR, dataset: ingest_orders, days_back: 30}\n")
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(text, encoding="utf-8")
    generate_dbt_staging.write(load_pipeline_config(config_file), w.project)
    for source in w.orders_files("DE"):
        table = pq.read_table(source)
        file_date = table["_file_date"][0].as_py()
        write_orders_file(orders_path(w.data_dir, "FR", file_date), table, file_date, "FR")
    w.assert_incremental_equals_full_rebuild(expect_incremental=())
    builds = w.last_builds()
    assert builds["stg_fr_orders"] == "full"
    assert builds["stg_uk_orders"] == "incremental"  # the other markets' staging is untouched
    # The cross-market marts read the new market (their input set changed); the UK mart does not.
    assert builds["int_orders_summary_daily"] == builds["qi_executive_daily_sales"] == "full", builds
    assert builds["uk_commercial_customer_daily"] == "incremental", builds
    assert w.query("select count(*) from qi_executive_daily_sales where market = 'FR'")[0][0] > 0

    # An edited model rebuilds in full; its neighbours stay incremental.
    mart = w.project / "models" / "marts" / "uk" / "uk_commercial_customer_daily.sql"
    mart.write_text(mart.read_text(encoding="utf-8").replace(
        "coalesce(scv.segment, 'Unassigned')", "coalesce(scv.segment, 'No segment')"), encoding="utf-8")
    w.dbt()
    builds = w.last_builds()
    assert builds["uk_commercial_customer_daily"] == "full"
    assert builds["qi_executive_daily_sales"] == "incremental"
    assert w.query("select count(*) from uk_commercial_customer_daily where segment = 'Unassigned'") == [(0,)]
