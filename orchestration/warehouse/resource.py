"""The dbt CLI resource of the warehouse: runs dbt with absolute DATA_DIR and DUCKDB_PATH."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource

from orchestration.warehouse.project import dbt_executable, dbt_project, environment, warehouse_env
from pipeline_common.script_support import UTF8_CHILD_ENV


class WarehouseDbtCliResource(DbtCliResource):
    """DbtCliResource whose dbt subprocess sees the warehouse paths of pipeline_common.settings.

    The paths are read when dbt starts (not at code load), so `.env` or test changes apply.
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        # UTF-8 mode: dagster-dbt reads dbt's output as UTF-8, a Windows console's dbt writes cp1252.
        values = {**warehouse_env(), **UTF8_CHILD_ENV}
        Path(values["DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        with environment(values):
            return super().cli(args, **kwargs)


def warehouse_dbt_resource() -> WarehouseDbtCliResource:
    return WarehouseDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
