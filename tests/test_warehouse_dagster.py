"""The dbt models inside Dagster: the full asset graph, selections, and real in-process runs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from orchestration.resources import DUCKDB_POOL
from orchestration.warehouse.assets import DBT_RESOURCE_KEY, build_dbt_assets, raise_for_failure
from orchestration.warehouse.resource import warehouse_dbt_resource
from pipeline_common.config import load_pipeline_config
from tests.plugins.warehouse import BuiltWarehouse


@pytest.fixture(scope="module")
def full_defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


@pytest.fixture(scope="module")
def dbt_assets_def() -> dg.AssetsDefinition:
    return build_dbt_assets(load_pipeline_config())


def test_every_dbt_source_has_an_upstream_asset_in_the_full_definitions(full_defs, dbt_assets_def):
    graph = full_defs.resolve_asset_graph()
    dbt_keys = set(dbt_assets_def.keys)
    upstream = {dep for key in dbt_keys for dep in graph.get(key).parent_keys} - dbt_keys
    config = load_pipeline_config()
    expected = {dg.AssetKey(config.asset_name(d.market, d.dataset)) for d in config.datasets}
    expected.add(dg.AssetKey("daily_sales_budget_exchange_ingest"))
    assert upstream == expected
    orphans = sorted(k.to_user_string() for k in upstream if not graph.get(k).is_materializable)
    assert not orphans, f"dbt sources with no producing asset: {orphans}"


def test_lineage_from_ingestion_through_staging_to_the_executive_mart(full_defs):
    graph = full_defs.resolve_asset_graph()
    qi = dg.AssetKey("qi_executive_daily_sales")
    ancestors = graph.get_ancestor_asset_keys(qi)
    for name in ["uk_orders_azure", "stg_uk_orders", "int_orders", "jp_orders_azure",
                 "daily_sales_budget_exchange_ingest", "stg_uk_new_names"]:
        assert dg.AssetKey(name) in ancestors, name
    assert graph.get(dg.AssetKey("stg_uk_orders")).parent_keys == {dg.AssetKey("uk_orders_azure")}


def test_dbt_tests_are_asset_checks_and_warn_tests_do_not_block(dbt_assets_def):
    checks = {(c.asset_key.to_user_string(), c.name): c for c in dbt_assets_def.check_specs}
    status = [c for (asset, name), c in checks.items()
              if asset == "stg_uk_orders" and name.startswith("accepted_values") and "status" in name]
    # A market's staging tests do not block: the market's gates hold it (docs/warehouse.md).
    assert len(status) == 1 and not status[0].blocking
    budget = [c for (asset, name), c in checks.items() if asset == "stg_budget_daily_sales"]
    assert budget and all(c.blocking for c in budget)
    assert all(c.blocking for (asset, _), c in checks.items() if asset == "qi_executive_daily_sales")
    relationships = [c for (asset, name), c in checks.items()
                     if asset == "stg_uk_orders" and name.startswith("relationships")]
    assert len(relationships) == 1 and not relationships[0].blocking
    assert ("int_orders_summary_daily", "assert_exchange_rate_for_every_order_month") in checks
    for model in ["int_orders_summary_daily", "qi_executive_daily_sales", "stg_uk_orders", "stg_budget_daily_sales"]:
        assert any(a == model and n.startswith("unique_combination_of_columns") for a, n in checks), model


def test_dbt_step_runs_in_the_duckdb_pool_with_its_op_tag(dbt_assets_def):
    op = dbt_assets_def.op
    assert op.tags.get("dbt_duckdb") == "true"
    assert op.pool == DUCKDB_POOL
    assert op.retry_policy is None  # test failures are permanent; locks retry via RetryRequested


def _copy_raw(built: BuiltWarehouse, data_dir: Path) -> None:
    shutil.copytree(built.data_dir / "raw", data_dir / "raw")


def _inject_later_row(data_dir: Path, market: str, column: str, value: object) -> int:
    """A later file re-issues one line of the market with `column` set to `value`."""
    folder = data_dir / "raw" / market / "ingest_orders"
    newest = sorted(folder.glob("*/*.parquet"))[-1]
    table = pq.read_table(newest)
    row = table.slice(0, 1)
    later = max(pc.max(table["_file_date"]).as_py(), dt.date(2026, 1, 1)) + dt.timedelta(days=1)
    row = row.set_column(row.schema.get_field_index(column), column, pa.array([value], row[column].type))
    row = row.set_column(row.schema.get_field_index("_file_date"), "_file_date",
                         pa.array([later], row["_file_date"].type))
    row = row.set_column(row.schema.get_field_index("_source_blob"), "_source_blob",
                         pa.array([f"{market}/injected/ingest_orders_{later:%Y%m%d}.csv"], row["_source_blob"].type))
    target = folder / f"{later:%Y}" / f"ingest_orders_{later:%Y%m%d}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(row, target)
    return row["order_line_id"][0].as_py()


def test_bad_rows_fail_their_dbt_tests_and_asset_checks(built_warehouse, dbt_assets_def, isolated_env):
    data_dir = isolated_env  # DATA_DIR of this test (tests/conftest.py)
    _copy_raw(built_warehouse, data_dir)
    _inject_later_row(data_dir, "UK", "status", "LOST")
    _inject_later_row(data_dir, "DE", "customer_id", None)

    result = dg.materialize(
        [dbt_assets_def], resources={DBT_RESOURCE_KEY: warehouse_dbt_resource()}, raise_on_error=False
    )
    assert result.success  # only gated markets failed: the step stands, the checks say what failed
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e
                   for e in result.get_asset_check_evaluations()}
    failed = sorted(k for k, e in evaluations.items() if not e.passed)
    status_checks = [k for k in failed if k[0] == "stg_uk_orders" and k[1].startswith("accepted_values")]
    assert len(status_checks) == 1 and "status" in status_checks[0][1], failed
    assert evaluations[status_checks[0]].metadata["dagster_dbt/failed_row_count"].value == 1
    de_failed = [name for asset, name in failed if asset == "stg_de_orders"]
    assert len(de_failed) == 1 and de_failed[0].startswith("not_null_columns"), failed
    # The other markets' checks ran and passed: each failure points at its own model.
    assert all(e.passed for (asset, _), e in evaluations.items() if asset in ("stg_it_orders", "stg_jp_orders"))
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "stg_uk_orders" in materialized and "stg_it_orders" in materialized
    # Each failing market holds back only its own gates; IT and JP go through to the marts.
    assert {"good_it_orders", "good_jp_orders", "qi_executive_daily_sales"} <= materialized
    assert not materialized & {"good_uk_orders", "good_de_orders"}
    assert evaluations[status_checks[0]].metadata["market"].value == "UK"
    assert "UK/injected/" in evaluations[status_checks[0]].metadata["files"].value
    de_check = next(e for (asset, name), e in evaluations.items() if asset == "stg_de_orders" and not e.passed)
    assert de_check.metadata["market"].value == "DE" and "DE/injected/" in de_check.metadata["files"].value


def test_a_held_warehouse_lock_is_retried_and_bad_data_is_not(built_warehouse, isolated_env):
    data_dir = isolated_env
    _copy_raw(built_warehouse, data_dir)
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    duckdb_path.parent.mkdir(parents=True)
    dbt = warehouse_dbt_resource()
    select = ["--select", "stg_budget_exchange_rates"]

    holder = duckdb.connect(str(duckdb_path))  # another process (the exporter, a SQL client) has the file open
    try:
        locked = dbt.cli(["run", *select], raise_on_error=False).wait()
    finally:
        holder.close()
    with pytest.raises(dg.RetryRequested):
        raise_for_failure(locked)

    rates = next((data_dir / "raw" / "budget").glob("exchange_rates_*.csv"))
    rates.write_text(rates.read_text(encoding="utf-8") + '"EUR",2026-13-01,0.5\n', encoding="utf-8")
    bad = dbt.cli(["run", *select], raise_on_error=False).wait()
    with pytest.raises(dg.Failure) as failure:
        raise_for_failure(bad)
    assert failure.value.allow_retries is False
    assert "stg_budget_exchange_rates" in failure.value.description


def test_old_per_run_dbt_target_dirs_are_pruned(tmp_path):
    import os
    import time

    from orchestration.warehouse.assets import prune_run_targets

    tmp_path = tmp_path / "target"
    tmp_path.mkdir()
    for index in range(5):
        run_dir = tmp_path / f"warehouse_dbt_models-run{index}"
        run_dir.mkdir()
        (run_dir / "run_results.json").write_text("{}", encoding="utf-8")
        stamp = time.time() - 100 + index
        os.utime(run_dir, (stamp, stamp))
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    dropped = prune_run_targets(tmp_path, "warehouse_dbt_models", keep=2)
    assert sorted(p.name for p in dropped) == [f"warehouse_dbt_models-run{i}" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json", "warehouse_dbt_models-run3", "warehouse_dbt_models-run4"]
