"""Test session set-up: every test runs against a private DATA_DIR, never the developer's data/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = [
    "tests.plugins.azurite",
    "tests.plugins.sample_data",
    "tests.plugins.warehouse",
    "tests.plugins.tableau_server",
    "tests.plugins.slack_server",
    "tests.plugins.postgres",
    "tests.plugins.held_files",
    "tests.plugins.entra_graph",
]

# Variables of contract section 1 that must not leak from a developer's shell or .env into tests.
PIPELINE_ENV_VARS = [
    "DATA_DIR", "LANDING_DIR", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CONTAINER", "DUCKDB_PATH",
    "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "SHAREPOINT_SITE_URL", "SHAREPOINT_CLIENT_ID", "SHAREPOINT_CLIENT_SECRET", "SHAREPOINT_BUDGET_FOLDER", "SHAREPOINT_ACS_TOKEN_URL",
    "SHAREPOINT_TENANT_ID", "SHAREPOINT_CERTIFICATE_PATH", "SHAREPOINT_CERTIFICATE_THUMBPRINT",
    "SHAREPOINT_CERTIFICATE_PASSWORD", "SHAREPOINT_AUTHORITY_HOST", "SHAREPOINT_GRAPH_ENDPOINT",
    "TABLEAU_SERVER_URL", "TABLEAU_SITE_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "TABLEAU_PROJECT",
    "EXPORT_LOCK_TIMEOUT_SECONDS", "EXPORT_PUBLISH_LOCK_TIMEOUT_SECONDS", "TABLEAU_PUBLISH_RETRIES",
    "TABLEAU_PUBLISH_RETRY_SECONDS", "PIPELINE_HELD_FILE_RETRY_SECONDS",
]
# Read with int() by tableauserverclient, so they are removed rather than blanked.
REMOVED_ENV_VARS = ["TSC_FILESIZE_LIMIT_MB", "TSC_CHUNK_SIZE_MB"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point DATA_DIR at a fresh folder and clear every pipeline variable (and Slack webhooks)."""
    from pipeline_common.config import load_pipeline_config

    webhooks = set(load_pipeline_config().alerts.routes.values())
    webhooks |= {k for k in os.environ if k.startswith("SLACK_WEBHOOK_")}
    for name in PIPELINE_ENV_VARS + sorted(webhooks) + ["DAGSTER_UI_BASE_URL"]:
        monkeypatch.setenv(name, "")  # empty counts as unset, and masks .env values
    for name in REMOVED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private DAGSTER_HOME with the repo's dagster.yaml (pools, run queue, monitoring)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
