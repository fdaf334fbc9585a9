"""The budget ingest's SharePoint path: msal and office365's GraphClient (the real libraries) against a
local HTTPS double of the Microsoft identity platform and Microsoft Graph (tests/plugins/entra_graph.py).

Signed in as an Entra ID app with a client secret or a certificate; errors say what to fix and exit
with the code of contract section 8; nothing a run prints names a secret.

The sign-in and Graph rules run the script's main in this process (`run_ingest`); two cases keep a
real `python daily_sales_ingest.py` (`run_ingest_cli`): a good download (exit 0 and the JSON line on
stdout of the real interpreter) and a refusal that echoes the secret (nothing of it on real stderr).
"""

from __future__ import annotations

import base64

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, quote_plus

import pytest

from tests.plugins.entra_graph import CLIENT_ID, LIBRARY, TENANT_ID, FakeMicrosoft365, use_certificate
from tests.plugins.in_process import InProcessRun, run_main
from tests.plugins.loopback_http import free_port
from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"
YEAR = SAMPLE_AS_OF.year
WORKBOOK = f"Daily Sales Budget {YEAR}.xlsx"
RunResult = TypeVar("RunResult", subprocess.CompletedProcess, InProcessRun)


@pytest.fixture
def tenant(microsoft365: FakeMicrosoft365, sample_landing: Path) -> FakeMicrosoft365:
    microsoft365.put(f"Budget/{WORKBOOK}", (sample_landing / "sharepoint" / WORKBOOK).read_bytes())
    return microsoft365


def run_ingest_cli(tenant: FakeMicrosoft365, *args: str) -> subprocess.CompletedProcess[str]:
    """The script as Dagster and Task Scheduler start it: a fresh interpreter, its real stdout and stderr."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--year", str(YEAR), *args], capture_output=True, text=True, timeout=120,
    )
    return no_secret_in(tenant, result)


def run_ingest(tenant: FakeMicrosoft365, *args: str) -> InProcessRun:
    """The script's main in this process (tests/plugins/in_process.py), for the sign-in and Graph rules.

    Each run starts as a fresh process would: no signed-in client (msal token, resolved drive) kept
    from an earlier run, so every run signs in and resolves the site again.
    """
    from sharepoint_budget import daily_sales_ingest

    from pipeline_common.sharepoint import signin

    signin._clients.clear()
    try:
        result = run_main(daily_sales_ingest.main, ["--year", str(YEAR), *args])
    finally:
        signin._clients.clear()
    return no_secret_in(tenant, result)


def no_secret_in(tenant: FakeMicrosoft365, result: RunResult) -> RunResult:
    output = result.stdout + result.stderr
    for form in (tenant.client_secret, quote(tenant.client_secret, safe=""), quote_plus(tenant.client_secret)):
        assert form not in output
    for token in tenant.access_tokens:
        assert token not in output
    return result


def outputs(data_dir: Path) -> list[Path]:
    return [data_dir / "raw" / "budget" / f"{name}_{YEAR}.csv" for name in ("daily_sales_budget", "exchange_rates")]


def leftovers(data_dir: Path) -> list[str]:
    folder = data_dir / "raw" / "budget"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def test_client_secret_download_matches_the_local_workbook_run(
    tenant: FakeMicrosoft365, isolated_env: Path, sample_landing: Path, tmp_path: Path
) -> None:
    result = run_ingest_cli(tenant)  # the real interpreter: exit code, the JSON line on stdout, no secret on stderr
    assert result.returncode == 0, result.stderr
    assert tenant.downloads == [f"Budget/{WORKBOOK}"]  # through the redirect to the download URL
    form = tenant.token_forms[0]
    assert form["grant_type"] == ["client_credentials"] and form["client_id"] == [CLIENT_ID]
    assert form["scope"] == [f"{tenant.graph_endpoint}/.default"]
    assert [step for step, _ in tenant.requests if step != "token"][:2] == ["site", "drives"]
    from_sharepoint = [p.read_bytes() for p in outputs(isolated_env)]
    assert leftovers(isolated_env) == []

    local_copy = tmp_path / "local" / WORKBOOK
    local_copy.parent.mkdir()
    shutil.copy(sample_landing / "sharepoint" / WORKBOOK, local_copy)
    for path in outputs(isolated_env):
        path.unlink()
    local = run_ingest(tenant, "--source", str(local_copy.parent))
    assert local.returncode == 0
    assert [p.read_bytes() for p in outputs(isolated_env)] == from_sharepoint
    assert json.loads(result.stdout.splitlines()[-1]) == json.loads(local.stdout.splitlines()[-1])


@pytest.mark.parametrize("kind", ["pem", "pfx"])
def test_certificate_sign_in_sends_a_signed_client_assertion(
    tenant: FakeMicrosoft365, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    pki = tenant.pki
    if kind == "pem":
        use_certificate(monkeypatch, pki.app_pem_path, pki.app_thumbprint.lower())
    else:
        use_certificate(monkeypatch, pki.app_pfx_path, pki.app_thumbprint, pki.app_pfx_password)
    tenant.refuse_sha1 = True  # a tenant on Entra ID's current guidance: SHA-256 only
    result = run_ingest(tenant)
    assert result.returncode == 0, result.stderr
    assert "client_secret" not in tenant.token_forms[0]
    header, claims = tenant.assertions[0]
    # SHA-256: x5t#S256 (the certificate's SHA-256 thumbprint), the certificate in x5c, signed PS256; no x5t.
    assert header["alg"] == "PS256" and header["typ"] == "JWT" and "x5t" not in header
    assert base64.urlsafe_b64decode(header["x5t#S256"] + "==").hex().upper() == pki.app_thumbprint_sha256
    assert header["x5c"]
    # The SHA-1 thumbprint given in the variable: a warning that names the change and the SHA-256 value.
    assert "SHA-1 thumbprint" in result.stderr and pki.app_thumbprint_sha256 in result.stderr
    assert claims["aud"] == tenant.token_endpoint and claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["exp"] > claims.get("nbf", claims.get("iat", 0)) and claims["jti"]
    assert tenant.downloads == [f"Budget/{WORKBOOK}"]
    if kind == "pfx":
        assert pki.app_pfx_password not in result.stdout + result.stderr


def test_certificate_without_a_thumbprint_signs_in_with_sha256_and_no_warning(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_certificate(monkeypatch, tenant.pki.app_pem_path, "")
    tenant.refuse_sha1 = True
    result = run_ingest(tenant)
    assert result.returncode == 0, result.stderr
    assert tenant.assertions[0][0]["alg"] == "PS256" and "SHA-1" not in result.stderr


def test_key_only_file_falls_back_to_sha1_which_a_sha256_only_tenant_refuses(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_certificate(monkeypatch, tenant.pki.app_key_only_path, tenant.pki.app_thumbprint)
    accepted = run_ingest(tenant)
    assert accepted.returncode == 0, accepted.stderr  # the deprecated form still works where the tenant takes it
    assert "holds the private key without its certificate" in accepted.stderr  # and says how to move on
    assert tenant.assertions[-1][0]["alg"] == "RS256" and "x5t" in tenant.assertions[-1][0]
    tenant.refuse_sha1 = True
    refused = run_ingest(tenant)
    assert refused.returncode == 78 and "AADSTS700027" in refused.stderr


def test_certificate_the_app_does_not_know_is_a_configuration_error(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key-only PEM: the thumbprint cannot be checked locally, so the identity platform rejects it.
    wrong = "AB" * 20
    use_certificate(monkeypatch, tenant.pki.app_key_only_path, wrong)
    result = run_ingest(tenant)
    assert result.returncode == 78, result.stderr
    assert "AADSTS700027" in result.stderr and f"thumbprint {wrong}" in result.stderr
    assert "SHAREPOINT_CERTIFICATE_THUMBPRINT" in result.stderr
    assert tenant.assertions and not tenant.downloads


def test_thumbprint_that_does_not_match_the_certificate_file_fails_before_any_request(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_certificate(monkeypatch, tenant.pki.app_pem_path, "CD" * 20)
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert f"has thumbprint {tenant.pki.app_thumbprint}" in result.stderr
    assert tenant.requests == []


def test_wrong_secret_is_a_configuration_error_naming_the_variable(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", tenant.client_secret + "-old")
    tenant.echo_form_in_errors = True  # the endpoint quotes the URL-encoded form, secret included
    result = run_ingest_cli(tenant)  # a refusal quoting the secret, through a real process's stderr
    assert result.returncode == 78
    assert "AADSTS7000215" in result.stderr and "SHAREPOINT_CLIENT_SECRET" in result.stderr
    for form in (tenant.client_secret + "-old", quote_plus(tenant.client_secret + "-old")):
        assert form not in result.stdout + result.stderr
    assert not tenant.downloads


def test_unknown_tenant_is_a_configuration_error(tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREPOINT_TENANT_ID", "11111111-2222-3333-4444-555555555555")
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert "tenant 11111111-2222-3333-4444-555555555555 not found" in result.stderr
    assert "SHAREPOINT_TENANT_ID" in result.stderr


def test_app_not_granted_on_the_site_says_how_to_grant(tenant: FakeMicrosoft365) -> None:
    tenant.granted = False
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert "HTTP 403" in result.stderr and "not granted on this site" in result.stderr
    assert "Sites.Selected" in result.stderr


def test_expired_token_at_graph_is_a_configuration_error(tenant: FakeMicrosoft365) -> None:
    tenant.fail_next("site", 401)
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert "HTTP 401" in result.stderr and "SHAREPOINT_TENANT_ID" in result.stderr


def test_missing_workbook_names_the_path_and_lists_the_workbooks_there(
    tenant: FakeMicrosoft365, isolated_env: Path
) -> None:
    assert run_ingest(tenant).returncode == 0
    before = [p.read_bytes() for p in outputs(isolated_env)]
    tenant.put(f"Budget/Daily Sales Budget {YEAR + 1}.xlsx", tenant.files.pop(f"Budget/{WORKBOOK}"))
    result = run_ingest(tenant)
    assert result.returncode == 65
    assert f"workbook '{LIBRARY}/Budget/{WORKBOOK}' not found (HTTP 404)" in result.stderr
    assert f"'Daily Sales Budget {YEAR + 1}.xlsx'" in result.stderr
    assert [p.read_bytes() for p in outputs(isolated_env)] == before
    skipped = run_ingest(tenant, "--skip-missing")
    assert skipped.returncode == 0 and json.loads(skipped.stdout.splitlines()[-1])["skipped"] is True


def test_wrong_site_or_library_is_a_configuration_error(tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREPOINT_SITE_URL", "https://contoso.sharepoint.com/sites/Finanse")
    result = run_ingest(tenant)
    assert result.returncode == 78 and "/sites/Finanse' not found (HTTP 404)" in result.stderr
    monkeypatch.setenv("SHAREPOINT_SITE_URL", tenant.site_url)
    monkeypatch.setenv("SHAREPOINT_BUDGET_FOLDER", "Budgets/2026")
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert "no document library" in result.stderr and "'Shared Documents' (Documents)" in result.stderr


def test_throttling_is_retried_after_the_servers_retry_after(tenant: FakeMicrosoft365, isolated_env: Path) -> None:
    tenant.fail_next("content", 429, **{"Retry-After": "1"})
    tenant.fail_next("item", 503, **{"Retry-After": "1"})
    result = run_ingest(tenant)
    assert result.returncode == 0, result.stderr
    assert tenant.steps("content") == 2 and tenant.steps("item") >= 2
    assert tenant.downloads == [f"Budget/{WORKBOOK}"]


def test_lasting_throttling_is_transient(tenant: FakeMicrosoft365, isolated_env: Path) -> None:
    tenant.fail_next("content", 429, times=10, **{"Retry-After": "120"})  # longer than worth waiting in process
    result = run_ingest(tenant)
    assert result.returncode == 75
    assert "throttled (HTTP 429, Retry-After 120 s)" in result.stderr
    assert tenant.steps("content") == 1 and leftovers(isolated_env) == []


def test_service_unavailable_is_transient_after_retries(tenant: FakeMicrosoft365) -> None:
    tenant.fail_next("site", 503, times=10, **{"Retry-After": "0"})
    result = run_ingest(tenant)
    assert result.returncode == 75
    assert "HTTP 503" in result.stderr and tenant.steps("site") == 3


def test_unreachable_graph_is_transient(tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREPOINT_AUTHORITY_HOST", f"https://127.0.0.1:{free_port()}")  # nobody listens
    result = run_ingest(tenant)
    assert result.returncode == 75
    assert "network error" in result.stderr


def test_unresolvable_host_of_a_never_working_configuration_is_a_configuration_error(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHAREPOINT_GRAPH_ENDPOINT", "https://graph.example.invalid")
    result = run_ingest(tenant)
    assert result.returncode == 78
    assert "'graph.example.invalid' in SHAREPOINT_GRAPH_ENDPOINT does not resolve" in result.stderr
    assert tenant.requests == []


def test_tenant_id_shaped_wrong_and_client_id_not_a_guid_fail_before_any_request(
    tenant: FakeMicrosoft365, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHAREPOINT_CLIENT_ID", "budget-app")
    result = run_ingest(tenant)
    assert result.returncode == 78 and "SHAREPOINT_CLIENT_ID must be" in result.stderr
    assert tenant.requests == [] and TENANT_ID not in result.stderr.split("SHAREPOINT_CLIENT_ID")[0]
