"""A dbt-duckdb plugin that creates the warehouse file's folder before DuckDB opens it.

DuckDB creates a missing database file but not its folder, so `dbt build --project-dir dbt
--profiles-dir dbt` by hand on a fresh DATA_DIR would fail with "Cannot open file". The profile
(dbt/profiles.yml) loads this plugin, and dbt-duckdb calls `update_connection_config` right
before it connects, wherever dbt runs: by hand, under Dagster, in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = str(getattr(creds, "path", "") or "")
        if path and path != ":memory:" and not path.startswith(("md:", "motherduck:")):
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
