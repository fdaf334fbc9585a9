"""The dbt warehouse on DuckDB as Dagster assets: one asset per dbt model, dbt tests as asset checks."""

from orchestration.warehouse.assets import build_defs

__all__ = ["build_defs"]
