"""The dbt warehouse on DuckDB as Dagster assets: one asset per dbt model, dbt tests as asset checks."""

from orchestration.warehouse.assets import build_defs
from orchestration.warehouse.selection import dbt_selection

__all__ = ["build_defs", "dbt_selection"]
