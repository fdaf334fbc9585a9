"""Every HTTPS client trusts the operating system's certificate store (contract section 1), proved with a
local "TLS-inspecting" setup: a private CA that certifi does not hold signs the servers' certificates
(Azurite over HTTPS, the Entra ID / Graph double, Slack), and the clients are told about it only the way the
OS store is: on Linux, truststore reads OpenSSL's default locations, which `SSL_CERT_FILE` overrides (on the
Windows desktop the same code reads the Windows certificate store, where IT deploys a proxy's CA).
`REQUESTS_CA_BUNDLE` is cleared in these tests, so certifi alone would fail every handshake. A CA that is
not in the store is a configuration error (78) naming the host and the fix, never retried as 75.
(Tableau: every test in tests/test_tableau_*.py runs over HTTPS this way; see tableau_server's fixture.)"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import certifi
import pytest

from tests.plugins.azurite import (
    ACCOUNT,
    ACCOUNT_KEY,
    _azurite_main_js,
    _stop,
    _wait_until_listening,
    orders_blob_name,
    orders_csv,
    run_sync_script,
)
from tests.plugins.entra_graph import _make_pki
from tests.plugins.loopback_http import free_port, serve_on_loopback
from tests.plugins.tableau_server import server_tls, trust_private_ca

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OS store that holds another CA only: what a desktop without the proxy's CA has."""
    return _make_pki(tmp_path_factory.mktemp("other-ca")).ca_path


def test_the_private_ca_is_not_in_certifi(microsoft_pki):
    assert microsoft_pki.ca_path.read_text() not in Path(certifi.where()).read_text()


# --- Azure Blob: Azurite over HTTPS --------------------------------------------------------------------

@pytest.fixture(scope="module")
def azurite_https(microsoft_pki, tmp_path_factory: pytest.TempPathFactory):
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js ('node') is not on PATH; it is needed to run Azurite", pytrace=False)
    port = free_port()
    command = [node, str(_azurite_main_js()), "--blobHost", "127.0.0.1", "--blobPort", str(port),
               "--cert", str(microsoft_pki.server_cert_path), "--key", str(microsoft_pki.server_key_path),
               "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--inMemoryPersistence"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=tmp_path_factory.mktemp("azurite-https"))
    try:
        _wait_until_listening(process, port)
        yield f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};" \
              f"BlobEndpoint=https://127.0.0.1:{port}/{ACCOUNT};"
    finally:
        _stop(process)


@pytest.mark.timeout(300)
def test_azure_sync_trusts_the_os_store_and_refuses_an_unknown_ca_as_configuration(
    azurite_https, microsoft_pki, untrusted_ca, isolated_env, monkeypatch, tmp_path
):
    from azure.storage.blob import BlobServiceClient

    day = dt.date(2026, 3, 9)
    with BlobServiceClient.from_connection_string(azurite_https, connection_verify=str(microsoft_pki.ca_path)) as service:
        container = service.create_container(f"tls-{os.getpid()}-{int(time.time() * 1000) % 100000}")
        container.upload_blob(orders_blob_name("JP", day), orders_csv(day, 5, currency="JPY"))
    trust_private_ca(monkeypatch, microsoft_pki)
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite_https, "AZURE_CONTAINER": container.container_name}
    args = ("--market", "JP", "--dataset", "ingest_orders", "--days-back", "1", "--as-of", day.isoformat())
    synced = run_sync_script(*args, env=env)
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert synced.summary["rows_loaded"] == 5

    started = time.monotonic()
    refused = run_sync_script(*args, "--force", env={**env, "SSL_CERT_FILE": str(untrusted_ca)})
    assert refused.returncode == 78, refused.stderr[-3000:]
    assert "certificate of 127.0.0.1" in refused.stderr and "certificate store" in refused.stderr
    assert time.monotonic() - started < 120
    assert ACCOUNT_KEY not in refused.stdout + refused.stderr


# --- Entra ID and Microsoft Graph ----------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_budget_download_trusts_the_os_store_and_refuses_an_unknown_ca_as_configuration(
    microsoft365, sample_landing, isolated_env, microsoft_pki, untrusted_ca, monkeypatch
):
    year = dt.date(2026, 3, 9).year
    from tests.plugins.sample_data import SAMPLE_AS_OF

    year = SAMPLE_AS_OF.year
    workbook = f"Daily Sales Budget {year}.xlsx"
    microsoft365.put(f"Budget/{workbook}", (sample_landing / "sharepoint" / workbook).read_bytes())
    trust_private_ca(monkeypatch, microsoft_pki)  # and no REQUESTS_CA_BUNDLE
    script = REPO_ROOT / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"

    def ingest(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "--year", str(year)], capture_output=True, text=True,
                              timeout=180, env={**os.environ, **extra})

    ok = ingest()
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert microsoft365.downloads == [f"Budget/{workbook}"]
    tokens_before = len(microsoft365.token_forms)
    refused = ingest(SSL_CERT_FILE=str(untrusted_ca))
    assert refused.returncode == 78, refused.stderr[-3000:]
    assert "certificate of 127.0.0.1" in refused.stderr and "certificate store" in refused.stderr
    assert len(microsoft365.token_forms) == tokens_before  # nothing was sent over the unverified connection
    assert microsoft365.client_secret not in refused.stdout + refused.stderr


# --- Slack -------------------------------------------------------------------------------------------

def test_slack_trusts_the_os_store_and_files_the_alert_at_once_for_an_unknown_ca(
    microsoft_pki, untrusted_ca, isolated_env, monkeypatch
):
    from orchestration.alerts import blocks
    from orchestration.alerts.slack import SlackAlerts
    from pipeline_common.config import DEFAULT_ALERT_ROUTES
    from tests.plugins.slack_server import FakeSlack, _handler

    fake = FakeSlack()
    with serve_on_loopback(_handler(fake), "fake-slack-https", tls=server_tls(microsoft_pki)) as url:
        fake.url = url
        monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", fake.webhook_url("technical"))
        trust_private_ca(monkeypatch, microsoft_pki)
        slack = SlackAlerts(routes=DEFAULT_ALERT_ROUTES, timeout_seconds=2.0, max_attempts=3, backoff_seconds=0.05)
        assert slack.send("technical", "ERROR", "over https", blocks.message("over https", "ERROR")) == "sent"
        assert len(fake.requests) == 1
        monkeypatch.setenv("SSL_CERT_FILE", str(untrusted_ca))
        started = time.monotonic()
        assert slack.send("technical", "ERROR", "untrusted", blocks.message("untrusted", "ERROR")) == "filed"
        assert time.monotonic() - started < 3  # the 1 s pacing, then no retry with backoff
        assert len(fake.requests) == 1
    [line] = [l for l in (isolated_env / "alerts").glob("alerts_*.jsonl")]
    assert "untrusted" in line.read_text(encoding="utf-8")
