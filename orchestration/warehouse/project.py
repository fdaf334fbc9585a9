"""The one `DbtProject` of the code location (a cached factory), the dbt executable and the
warehouse paths dbt runs with.

Preparing the manifest needs the dbt resource, so it lives in resource.py, which imports this
module (never the other way round).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from pipeline_common import settings
from pipeline_common.files import atomic_write

DBT_PROJECT_DIR = settings.repo_root() / "dbt"


def warehouse_dbt_project() -> DbtProject:
    """The code location's DbtProject, built once per target folder on first use (the folder:
    `settings.dbt_target_dir()`, dbt's own DBT_TARGET_PATH else dbt/target, as for `dbt` by hand)."""
    return _project(settings.dbt_target_dir())


@cache
def _project(target: Path) -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=target)


def dbt_executable() -> str:
    """The dbt next to this interpreter (the venv's, also when it is not activated), else dbt on PATH."""
    beside = Path(sys.executable).parent / ("dbt.exe" if os.name == "nt" else "dbt")
    return str(beside) if beside.is_file() else (shutil.which("dbt") or "dbt")


def warehouse_env() -> dict[str, str]:
    """DATA_DIR and DUCKDB_PATH as absolute paths: dbt runs with cwd = dbt/, so relative ones would move."""
    return {"DATA_DIR": str(settings.data_dir().resolve()), "DUCKDB_PATH": str(settings.duckdb_path().resolve())}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (the dbt subprocess copies os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


PREPARED_FOR_FILE = "prepared_for.json"


def _prepared_record(project: DbtProject) -> Path:
    target = Path(project.target_path)
    return (target if target.is_absolute() else Path(project.project_dir) / target) / PREPARED_FOR_FILE


def prepared_for(project: DbtProject) -> dict[str, str] | None:
    """The warehouse paths the manifest (and dbt's partial parse) was prepared with, if recorded."""
    try:
        values = json.loads(_prepared_record(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def record_prepared(project: DbtProject) -> None:
    """Write down the warehouse paths the manifest was just prepared with (see prepared_for)."""
    with atomic_write(_prepared_record(project), fsync=False) as tmp:
        tmp.write_text(json.dumps(warehouse_env(), sort_keys=True), encoding="utf-8")
