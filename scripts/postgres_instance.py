"""The Postgres-backed Dagster home of the team server, shared by serve.py and migrate_history.py.

The instance settings come from deploy/dagster.yaml (the same file Docker Compose uses), with its
DockerRunLauncher replaced: without Docker, each run is a process started by the code server,
recording its host (orchestration.run_launcher).
The connection comes from DAGSTER_POSTGRES_* in the environment or `.env`, never from a file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

from pipeline_common.script_support import ConfigurationError  # noqa: E402
from pipeline_common.settings import env  # noqa: E402  (reads .env once)

DEPLOY_DIR = REPO_ROOT / "deploy"
DEFAULT_POSTGRES_HOME = REPO_ROOT / "dagster_home_postgres"
CODE_LOCATION_MODULE = "orchestration.definitions"


def desktop_location_name() -> str:
    """The code location's name in the repo's workspace.yaml (the desktop's): schedule and sensor
    state is keyed by it, so the deployment serves the location under the same name."""
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    (entry,) = workspace["load_from"]
    return next(iter(entry.values()))["location_name"]


CODE_LOCATION_NAME = desktop_location_name()
REQUIRED_VARS = ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB")
DEFAULT_POSTGRES_PORT = "5432"
EXIT_CONFIG = 78


class ConfigError(ConfigurationError):
    """A missing or half-set variable, or a home that is not what it should be (exit 78)."""


def postgres_environment() -> dict[str, str]:
    """DAGSTER_POSTGRES_* as the instance reads them; a missing one is an error naming it."""
    missing = [name for name in REQUIRED_VARS if not env(name)]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} not set: the Postgres instance needs DAGSTER_POSTGRES_HOST, _USER, "
            "_PASSWORD and _DB (and optionally _PORT, default 5432) in the environment or .env "
            "(docs/deployment.md)"
        )
    values = {name: env(name) or "" for name in REQUIRED_VARS}
    port = env("DAGSTER_POSTGRES_PORT", DEFAULT_POSTGRES_PORT) or DEFAULT_POSTGRES_PORT
    if not port.isdigit():
        raise ConfigError(f"DAGSTER_POSTGRES_PORT must be a port number, got {port!r}")
    values["DAGSTER_POSTGRES_PORT"] = port
    return values


# A process per run, started by the code server, recording the host it runs on (as on the desktop).
PROCESS_RUN_LAUNCHER = {"module": "orchestration.run_launcher", "class": "HostRecordingRunLauncher"}


def process_instance_settings() -> dict:
    """deploy/dagster.yaml with the desktop's run launcher instead of Docker's."""
    settings = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text(encoding="utf-8"))
    settings["run_launcher"] = dict(PROCESS_RUN_LAUNCHER)
    return settings


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    from pipeline_common.files import atomic_write

    with atomic_write(path, fsync=False) as partial:
        partial.write_text(text, encoding="utf-8")


def prepare_postgres_home(home: Path) -> Path:
    """Write dagster.yaml and workspace.yaml into `home` from deploy/ (refreshed at every start)."""
    home.mkdir(parents=True, exist_ok=True)
    header = "# Written by scripts/serve.py from deploy/dagster.yaml (run_launcher: the desktop's); edit that file.\n"
    _write_if_changed(home / "dagster.yaml", header + yaml.safe_dump(process_instance_settings(), sort_keys=False))
    _write_if_changed(home / "workspace.yaml", (DEPLOY_DIR / "workspace.yaml").read_text(encoding="utf-8"))
    return home


def storage_kind(instance) -> str:
    """'postgres', 'sqlite' or the storage class name, from the instance's run storage."""
    name = type(instance.run_storage).__name__
    if "Postgres" in name:
        return "postgres"
    if "Sqlite" in name:
        return "sqlite"
    return name
