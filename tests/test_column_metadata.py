"""Every dbt model and every export carries its complete columns with types (issue 26, item 6).

Class: whatever a model or an extract holds, its materialization's `dagster/column_schema` lists
every column, in order, with its type, as the warehouse itself describes the table (an independent
DESCRIBE on the built DuckDB file). Real dbt build and real export script through Dagster Pipes.
"""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb

from orchestration.warehouse.assets import DBT_RESOURCE_KEY, build_dbt_assets
from orchestration.warehouse.resource import warehouse_dbt_resource
from pipeline_common.config import load_pipeline_config
from tests.test_export_assets import RESOURCES, config_with_exports, export_asset


def _described(path, table: str) -> list[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [(str(r[0]), str(r[1])) for r in con.execute(f'DESCRIBE "{table}"').fetchall()]


def test_every_dbt_model_has_all_its_columns_with_types(built_warehouse, isolated_env):
    shutil.copytree(built_warehouse.data_dir / "raw", isolated_env / "raw")
    dbt_models = build_dbt_assets(load_pipeline_config())
    result = dg.materialize([dbt_models], resources={DBT_RESOURCE_KEY: warehouse_dbt_resource()})
    assert result.success
    events = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    assert set(events) == {key.path[-1] for key in dbt_models.keys}  # every model, none left out
    warehouse = isolated_env / "warehouse" / "analytics.duckdb"
    for model, event in events.items():
        schema = event.materialization.metadata["dagster/column_schema"].value
        assert [(c.name, c.type) for c in schema.columns] == _described(warehouse, model), model


def test_an_export_has_all_its_columns_with_types(export_warehouse, isolated_env):
    config = config_with_exports([{"asset": "tableau_executive_daily_sales", "name": "executive_daily_sales",
                                   "tables": ["qi_executive_daily_sales"]}])
    result = dg.materialize([export_asset(config, "tableau_executive_daily_sales")], resources=RESOURCES)
    assert result.success
    [event] = result.asset_materializations_for_node("tableau_executive_daily_sales")
    columns = [(c.name, c.type) for c in event.metadata["dagster/column_schema"].value.columns]
    described = _described(export_warehouse, "qi_executive_daily_sales")
    assert [name for name, _ in columns] == [name for name, _ in described]
    assert all(data_type for _, data_type in columns)
    # a column Tableau can store as is keeps the warehouse's type
    assert dict(columns)["order_date"] == dict(described)["order_date"] == "DATE"
