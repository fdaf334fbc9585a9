"""Which host (and container) a process runs on, and which host a run executes on.

Every run launched by the project's run launcher carries the tag `retail_sales/host` (the
identity below) and `retail_sales/code_server` (where its worker was started); Docker runs carry
Dagster's own `docker/container_id`. Start-up recovery and the run-worker watchdog act only on
runs of their own host, and never judge a container's run by a process id (docs/deployment.md,
"Host identity").

Standard library only: scripts/supervisor.py and scripts/serve.py import it before Dagster.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST_ENV_VAR = "DAGSTER_HOST_ID"
HOST_TAG = "retail_sales/host"
CODE_SERVER_TAG = "retail_sales/code_server"
CONTAINER_TAG = "docker/container_id"  # written by dagster_docker's DockerRunLauncher


def host_identity() -> str:
    """DAGSTER_HOST_ID when set (two stacks on one machine, a cluster's node name), else the host name.

    Inside a container the host name is the container's id, so a container is its own host."""
    configured = os.environ.get(HOST_ENV_VAR, "").strip()
    return configured or socket.gethostname()


def in_container() -> bool:
    """Docker (/.dockerenv) or another OCI runtime (/run/.containerenv)."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()
