"""A dbt-duckdb plugin that dbt/profiles.yml loads wherever dbt runs (by hand, under Dagster, in CI).

1. **One warehouse path.** The pipeline's warehouse is `pipeline_common.settings.duckdb_path()`
   (DUCKDB_PATH, else $DATA_DIR/warehouse/analytics.duckdb; `.env` applied, relative paths from the
   repo root), and its raw files are under `settings.data_dir()`. dbt renders its own from the
   environment it was started with (the profile's `path`, the sources' `DATA_DIR`), and dbt reads
   no `.env` and resolves relative paths from its working folder. Right before DuckDB opens the
   file, dbt-duckdb calls `update_connection_config`: this plugin stops dbt there, with a message
   naming both paths and the fix, when the two disagree (a DATA_DIR set only in `.env`, dbt started
   outside the repo root), instead of building a second warehouse nobody reads.
2. **The folder.** DuckDB creates a missing database file but not its folder, so a `dbt build` by
   hand on a fresh DATA_DIR would fail with "Cannot open file": the plugin creates the folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError


class WarehousePathMismatch(DbtRuntimeError):
    """dbt was about to build another warehouse than the pipeline's (dbt prints it as a runtime error)."""


def _as_dbt_sees_it(value: str, cwd: Path) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else cwd / path).resolve()


def _same(left: Path, right: Path) -> bool:
    return os.path.normcase(left) == os.path.normcase(right)  # Windows paths ignore case


def mismatch(dbt_env: Mapping[str, str], cwd: Path, profile_path: str) -> str | None:
    """Why dbt's view of the warehouse differs from the pipeline's, or None when they agree.

    `dbt_env` is the environment dbt rendered the profile and sources with (before `.env` is read
    here), `cwd` its working folder, `profile_path` the DuckDB path the profile rendered."""
    from pipeline_common import settings

    dbt_data = _as_dbt_sees_it((dbt_env.get("DATA_DIR") or "").strip() or "data", cwd)
    dbt_duckdb = _as_dbt_sees_it(profile_path, cwd)
    pipeline_data = settings.data_dir().resolve()
    pipeline_duckdb = settings.duckdb_path().resolve()
    problems = []
    if not _same(dbt_duckdb, pipeline_duckdb):
        problems.append(f"dbt would build the warehouse {dbt_duckdb}, the pipeline's is {pipeline_duckdb}")
    if not _same(dbt_data, pipeline_data):
        problems.append(f"dbt would read raw files under {dbt_data}, the pipeline's DATA_DIR is {pipeline_data}")
    if not problems:
        return None
    return (
        "; ".join(problems) + ". dbt reads neither `.env` nor paths relative to the repository: run dbt "
        "from the repository root with DATA_DIR (and DUCKDB_PATH, if you set it) in the environment as "
        "`.env` has them, or run the pipeline's flow (docs/warehouse.md, 'Running dbt by hand')."
    )


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = str(getattr(creds, "path", "") or "")
        if not path or path == ":memory:" or path.startswith(("md:", "motherduck:")):
            return
        problem = mismatch(dict(os.environ), Path.cwd(), path)
        if problem:
            raise WarehousePathMismatch(problem)
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
