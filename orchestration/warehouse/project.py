"""The one `DbtProject` of the code location, and the manifest it loads.

The manifest is prepared at install time (`python scripts/prepare_dbt.py`, run by the set-up
scripts), not on every code load; when it is missing, it is parsed once here, with a log line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtProject

from pipeline_common import settings
from pipeline_common.files import atomic_write

DBT_PROJECT_DIR = settings.repo_root() / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

_log = logging.getLogger(__name__)


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


def prepared_for(project: DbtProject = dbt_project) -> dict[str, str] | None:
    """The warehouse paths the manifest (and dbt's partial parse) was prepared with, if recorded."""
    try:
        values = json.loads(_prepared_record(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def prepare_manifest(project: DbtProject = dbt_project) -> Path:
    """Run `dbt parse` for the project (with the warehouse paths resolved); return the manifest path.

    dbt's partial parse depends on DATA_DIR and DUCKDB_PATH (the profile's path, the sources'
    locations), so the paths are recorded beside the manifest: a run with other paths prepares
    again once instead of re-parsing the project on every dbt call.
    """
    from orchestration.warehouse.resource import WarehouseDbtCliResource

    dbt = WarehouseDbtCliResource(project_dir=project, dbt_executable=dbt_executable())
    dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    record = _prepared_record(project)
    with atomic_write(record, fsync=False) as tmp:
        tmp.write_text(json.dumps(warehouse_env(), sort_keys=True), encoding="utf-8")
    return project.manifest_path


def manifest_path(project: DbtProject = dbt_project) -> Path:
    """The prepared manifest; parse once (and say so) when set-up did not prepare it."""
    if not project.manifest_path.is_file():
        _log.warning(
            "dbt manifest missing at %s: parsing the dbt project once now "
            "(run `python scripts/prepare_dbt.py` at install time to skip this)",
            project.manifest_path,
        )
        prepare_manifest(project)
    return project.manifest_path
