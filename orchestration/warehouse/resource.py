"""The dbt CLI resource of the warehouse: runs dbt with absolute DATA_DIR and DUCKDB_PATH, and nothing else first.

What dagster-dbt 0.29 does on every `cli()` call before dbt starts, measured on the desktop
(docs/warehouse.md, "Orchestration overhead"): a `dbt --version` subprocess (about 1.3 s: it imports
dbt) and an in-process dbt adapter set-up (about 0.8 s), used only to fetch row counts or column
metadata, which these assets do not ask for. This resource answers the version from the installed
dbt-core package's metadata and sets up no adapter. Both are overrides of dagster-dbt's private
`_cli_version` / `_initialize_dbt_core_adapter`: if an upgrade renames them, the overrides simply stop
applying (the run is slower, never wrong), and tests/test_warehouse_lean.py, which counts the dbt
processes a build starts, fails and says so. dagster-dbt is pinned exactly in requirements.txt.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from packaging import version

from orchestration.warehouse.project import (
    dbt_executable,
    environment,
    prepared_for,
    record_prepared,
    warehouse_dbt_project,
    warehouse_env,
)
from pipeline_common.resource_limits import lower_current_process
from pipeline_common.script_support import UTF8_CHILD_ENV

_log = logging.getLogger(__name__)


class WarehouseDbtCliResource(DbtCliResource):
    """DbtCliResource whose dbt subprocess sees the warehouse paths of pipeline_common.settings.

    The paths are read when dbt starts (not at code load), so `.env` or test changes apply. When
    they differ from the ones the manifest was prepared with, the project is prepared again once
    (dbt would otherwise re-parse on every call: "profile has changed").
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        values = warehouse_env()
        # The resource limits: dbt inherits this step's below-normal priority (pipeline.yaml resource_limits.priority);
        # its DuckDB memory, threads and spill folder come from the profile's plugin.
        lower_current_process()
        Path(values["DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        project = warehouse_dbt_project()
        if args and args[0] != "parse" and prepared_for(project) != values:
            prepare_manifest(project)
        # UTF-8 mode: dagster-dbt reads dbt's output as UTF-8, a Windows console's dbt writes cp1252.
        with environment({**values, **UTF8_CHILD_ENV}):
            return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:  # dagster-dbt would run `dbt --version` for this
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:  # only for row counts / column metadata
        return None


def warehouse_dbt_resource() -> WarehouseDbtCliResource:
    return WarehouseDbtCliResource(project_dir=warehouse_dbt_project(), dbt_executable=dbt_executable())


def prepare_manifest(project: DbtProject | None = None) -> Path:
    """Run `dbt parse` for the project (with the warehouse paths resolved); return the manifest path.

    dbt's partial parse depends on DATA_DIR and DUCKDB_PATH (the profile's path, the sources'
    locations), so the paths are recorded beside the manifest: a run with other paths prepares
    again once instead of re-parsing the project on every dbt call.
    """
    project = project or warehouse_dbt_project()
    dbt = WarehouseDbtCliResource(project_dir=project, dbt_executable=dbt_executable())
    dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    record_prepared(project)
    return project.manifest_path


def manifest_path(project: DbtProject | None = None) -> Path:
    """The prepared manifest; parse once (and say so) when set-up did not prepare it."""
    project = project or warehouse_dbt_project()
    if not project.manifest_path.is_file():
        _log.warning(
            "dbt manifest missing at %s: parsing the dbt project once now "
            "(run `python scripts/prepare_dbt.py` at install time to skip this)",
            project.manifest_path,
        )
        prepare_manifest(project)
    return project.manifest_path

