"""Which way each source signs in, decided from the environment before any network call (contract
section 1): every half-set group is a configuration error (exit 78) naming the missing variable;
an ACS-era SharePoint configuration is refused with the retirement message; the Azure credential
is chosen as docs/sources.md says (Entra ID cannot run against Azurite, so its selection is tested here).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_common import azure_storage
from pipeline_common.sharepoint import settings as sharepoint_config
from pipeline_common.script_support import EXIT_CONFIG, ConfigurationError
from tests.plugins.entra_graph import CLIENT_ID, TENANT_ID

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"
SHAREPOINT_SECRET = "sp-secret-" + "9" * 20
COMPLETE_SHAREPOINT = {
    "SHAREPOINT_SITE_URL": "https://contoso.sharepoint.com/sites/Finance",
    "SHAREPOINT_BUDGET_FOLDER": "Shared Documents/Budget",
    "SHAREPOINT_TENANT_ID": TENANT_ID,
    "SHAREPOINT_CLIENT_ID": CLIENT_ID,
    "SHAREPOINT_CLIENT_SECRET": SHAREPOINT_SECRET,
}


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


# --- SharePoint -----------------------------------------------------------------------------------

def test_sharepoint_unset_means_the_local_folder(isolated_env: Path) -> None:
    assert sharepoint_config.sharepoint_settings() is None


def test_complete_sharepoint_group_with_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, COMPLETE_SHAREPOINT)
    settings = sharepoint_config.sharepoint_settings()
    assert settings is not None and settings.credential_kind == "client secret"
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.graph_endpoint == "https://graph.microsoft.com"
    assert SHAREPOINT_SECRET not in repr(settings)


@pytest.mark.parametrize("missing", ["SHAREPOINT_SITE_URL", "SHAREPOINT_BUDGET_FOLDER", "SHAREPOINT_CLIENT_ID",
                                     "SHAREPOINT_CLIENT_SECRET"])
def test_each_missing_sharepoint_variable_is_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    _set(monkeypatch, {**COMPLETE_SHAREPOINT, missing: ""})
    with pytest.raises(ConfigurationError) as error:
        sharepoint_config.sharepoint_settings()
    assert error.value.exit_code == EXIT_CONFIG
    assert f"set {missing}" in str(error.value)


@pytest.mark.parametrize("given, missing", [
    ({"SHAREPOINT_CERTIFICATE_PATH": "app.pem"}, "SHAREPOINT_CERTIFICATE_THUMBPRINT"),
    ({"SHAREPOINT_CERTIFICATE_THUMBPRINT": "AB" * 20}, "SHAREPOINT_CERTIFICATE_PATH"),
    ({"SHAREPOINT_CERTIFICATE_PASSWORD": "pw-123456"}, "SHAREPOINT_CERTIFICATE_PATH"),
])
def test_half_set_certificate_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], missing: str
) -> None:
    _set(monkeypatch, {**COMPLETE_SHAREPOINT, "SHAREPOINT_CLIENT_SECRET": "", **given})
    with pytest.raises(ConfigurationError, match=f"set .*{missing}"):
        sharepoint_config.sharepoint_settings()


def test_secret_and_certificate_together_is_ambiguous(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, {**COMPLETE_SHAREPOINT, "SHAREPOINT_CERTIFICATE_PATH": "app.pem",
                       "SHAREPOINT_CERTIFICATE_THUMBPRINT": "AB" * 20})
    with pytest.raises(ConfigurationError, match="keep one"):
        sharepoint_config.sharepoint_settings()


def test_certificate_selection_reads_pem_and_pfx(monkeypatch: pytest.MonkeyPatch, microsoft_pki) -> None:
    base = {**COMPLETE_SHAREPOINT, "SHAREPOINT_CLIENT_SECRET": ""}
    _set(monkeypatch, {**base, "SHAREPOINT_CERTIFICATE_PATH": str(microsoft_pki.app_pfx_path),
                       "SHAREPOINT_CERTIFICATE_THUMBPRINT": microsoft_pki.app_thumbprint,
                       "SHAREPOINT_CERTIFICATE_PASSWORD": "wrong-password"})
    with pytest.raises(ConfigurationError, match="wrong SHAREPOINT_CERTIFICATE_PASSWORD"):
        sharepoint_config.sharepoint_settings()
    monkeypatch.setenv("SHAREPOINT_CERTIFICATE_PASSWORD", microsoft_pki.app_pfx_password)
    settings = sharepoint_config.sharepoint_settings()
    assert settings is not None and settings.credential_kind == "certificate"
    assert settings.certificate.thumbprint == microsoft_pki.app_thumbprint
    later = settings.certificate.expires + dt.timedelta(days=1)
    with pytest.raises(ConfigurationError, match="expired on"):
        sharepoint_config.sharepoint_settings(now=later)


@pytest.mark.parametrize("acs", [
    {"SHAREPOINT_TENANT_ID": ""},  # site + client id + secret, no tenant: the ACS shape
    {"SHAREPOINT_ACS_TOKEN_URL": "https://accounts.accesscontrol.windows.net/{realm}/tokens/OAuth/2"},
])
def test_acs_configuration_is_refused_with_the_retirement_message(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path, acs: dict[str, str]
) -> None:
    _set(monkeypatch, {**COMPLETE_SHAREPOINT, **acs})
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"), "--year", "2026"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 78
    assert "Azure ACS app-only sign-in for SharePoint Online was retired on 2 April 2026" in result.stderr
    assert "SHAREPOINT_TENANT_ID" in result.stderr and "docs/sources.md" in result.stderr
    assert SHAREPOINT_SECRET not in result.stdout + result.stderr


# --- Azure Blob -----------------------------------------------------------------------------------

ACCOUNT_URL = "https://pipelinetest.blob.core.windows.net"
SAS = "sv=2025-11-05&ss=b&srt=co&sp=rl&se=2099-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig=abc%2Bdef%2F123xyz%3D"


def test_azure_unset_means_the_landing_folder() -> None:
    assert azure_storage.azure_storage_settings() is None


def test_sas_token_selects_sas_and_is_passed_as_the_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, {"AZURE_STORAGE_ACCOUNT_URL": ACCOUNT_URL + "/", "AZURE_STORAGE_SAS_TOKEN": "?" + SAS})
    settings = azure_storage.azure_storage_settings()
    assert settings.mode == "SAS token" and settings.account_url == ACCOUNT_URL
    assert azure_storage.credential_for(settings) == SAS
    assert "sig=" not in repr(settings)


def test_sas_inside_the_account_url_counts_as_a_sas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", f"{ACCOUNT_URL}?{SAS}")
    settings = azure_storage.azure_storage_settings()
    assert settings.mode == "SAS token" and settings.account_url == ACCOUNT_URL


def test_account_url_alone_uses_default_azure_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import DefaultAzureCredential

    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", ACCOUNT_URL)
    settings = azure_storage.azure_storage_settings()
    assert settings.mode == "Microsoft Entra ID" and not settings.service_principal
    assert isinstance(azure_storage.credential_for(settings), DefaultAzureCredential)


def test_service_principal_variables_use_the_environment_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import EnvironmentCredential

    _set(monkeypatch, {"AZURE_STORAGE_ACCOUNT_URL": ACCOUNT_URL, "AZURE_TENANT_ID": TENANT_ID,
                       "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "sp-" + "x" * 30})
    settings = azure_storage.azure_storage_settings()
    assert settings.mode == "Microsoft Entra ID" and settings.service_principal
    credential = azure_storage.credential_for(settings)
    assert isinstance(credential, EnvironmentCredential) and credential._credential is not None


def test_connection_string_selects_the_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=pipelinetest;AccountKey=a2V5;EndpointSuffix=core.windows.net")
    settings = azure_storage.azure_storage_settings()
    assert settings.mode == "connection string" and settings.host == "pipelinetest.blob.core.windows.net"
    assert azure_storage.credential_for(settings) is None


@pytest.mark.parametrize("values, named", [
    ({"AZURE_STORAGE_SAS_TOKEN": SAS}, "set AZURE_STORAGE_ACCOUNT_URL"),
    ({"AZURE_CLIENT_SECRET": "sp-" + "x" * 30}, "set AZURE_STORAGE_ACCOUNT_URL"),
    ({"AZURE_STORAGE_ACCOUNT_URL": ACCOUNT_URL, "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID},
     "set AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)"),
    ({"AZURE_STORAGE_ACCOUNT_URL": ACCOUNT_URL, "AZURE_CLIENT_SECRET": "sp-" + "x" * 30},
     "set AZURE_TENANT_ID, AZURE_CLIENT_ID"),
    ({"AZURE_STORAGE_ACCOUNT_URL": "pipelinetest.blob.core.windows.net"}, "must be the account's blob endpoint"),
    ({"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=a2V5", "AZURE_STORAGE_SAS_TOKEN": SAS},
     "configured twice"),
])
def test_half_set_azure_groups_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], named: str
) -> None:
    _set(monkeypatch, values)
    with pytest.raises(ConfigurationError) as error:
        azure_storage.azure_storage_settings()
    assert named in str(error.value) and "abc" not in str(error.value)


def test_expired_sas_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, {"AZURE_STORAGE_ACCOUNT_URL": ACCOUNT_URL, "AZURE_STORAGE_SAS_TOKEN": SAS})
    after_expiry = dt.datetime(2099, 1, 2, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigurationError, match=r"expired at 2099-01-01 00:00 UTC \(its se= expiry\)"):
        azure_storage.azure_storage_settings(now=after_expiry)


def test_half_set_azure_group_stops_the_sync_with_78(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", SAS)
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", "UK", "--dataset", "ingest_orders"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 78
    assert "AZURE_STORAGE_SAS_TOKEN is set but AZURE_STORAGE_ACCOUNT_URL is not" in result.stderr
    assert "abc%2Bdef" not in result.stdout + result.stderr and "abc+def" not in result.stdout + result.stderr
