"""Paths and switches from the environment (contract section 1), with `.env` at the repo root.

Values already in the environment win over `.env`, so Dagster, Task Scheduler and tests
can override anything. Nothing here logs a value: several of these are secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
_dotenv_loaded = False


def repo_root() -> Path:
    return _REPO_ROOT


def load_dotenv_once() -> None:
    """Load `<repo>/.env` into os.environ without overriding what is already set."""
    global _dotenv_loaded
    if _dotenv_loaded:
        return
    _dotenv_loaded = True
    env_file = _REPO_ROOT / ".env"
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


def env(name: str, default: str | None = None) -> str | None:
    """An environment value; empty strings count as unset (as `.env.example` leaves them)."""
    load_dotenv_once()
    value = os.environ.get(name, "")
    return value if value.strip() else default


def _path_from(name: str, default: Path) -> Path:
    value = env(name)
    path = Path(value).expanduser() if value else default
    return path if path.is_absolute() else (_REPO_ROOT / path)


def dbt_target_dir(project_dir: Path | None = None) -> Path:
    """dbt's target folder (manifest, partial parse, each run's files): dbt's own `DBT_TARGET_PATH`, relative to
    the dbt project folder (`project_dir`, dbt/ by default) as dbt reads it, or absolute; else <project>/target.
    The code location, its dbt runs and the doctor all ask here."""
    value = env("DBT_TARGET_PATH")
    path = Path(value).expanduser() if value else Path("target")
    return path if path.is_absolute() else ((project_dir or _REPO_ROOT / "dbt") / path)


def data_dir() -> Path:
    return _path_from("DATA_DIR", _REPO_ROOT / "data")


def landing_dir() -> Path:
    return _path_from("LANDING_DIR", data_dir() / "landing")


def raw_dir() -> Path:
    return data_dir() / "raw"


def duckdb_path() -> Path:
    return _path_from("DUCKDB_PATH", data_dir() / "warehouse" / "analytics.duckdb")


def exports_dir() -> Path:
    return data_dir() / "exports"


def alerts_dir() -> Path:
    return data_dir() / "alerts"


def azure_connection_string() -> str | None:
    return env("AZURE_STORAGE_CONNECTION_STRING")


def azure_container() -> str:
    return env("AZURE_CONTAINER", "raw") or "raw"


def sharepoint_budget_dir() -> Path:
    return landing_dir() / "sharepoint"
