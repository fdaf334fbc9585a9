"""The dbt CLI resource of the warehouse: runs dbt with absolute DATA_DIR and DUCKDB_PATH."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource

from orchestration.warehouse.project import dbt_executable, dbt_project, environment, warehouse_env


class WarehouseDbtCliResource(DbtCliResource):
    """DbtCliResource whose dbt subprocess sees the warehouse paths of pipeline_common.settings.

    The paths are read when dbt starts (not at code load), so `.env` or test changes apply.
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        values = warehouse_env()
        Path(values["DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        with environment(values):
            return super().cli(args, **kwargs)


def warehouse_dbt_resource() -> WarehouseDbtCliResource:
    return WarehouseDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
