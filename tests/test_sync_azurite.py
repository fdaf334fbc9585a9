"""sync_azure.py against a real Azurite blob service: listing, streaming download, ETag-based skips, errors."""

from __future__ import annotations

import datetime as dt
import http.server
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.plugins.azurite import (
    ACCOUNT_KEY,
    ORDERS_HEADER,
    Azurite,
    LandingTree,
    csv_text,
    dev_connection_string,
    orders_blob_name,
    orders_csv,
    orders_rows,
    run_sync_script,
)
from tests.plugins.loopback_http import free_port, serve_on_loopback

pytestmark = pytest.mark.azurite

AS_OF = dt.date(2026, 11, 20)
DAYS = [AS_OF - dt.timedelta(days=n) for n in range(4)]  # 4 days; the window below covers the newest 3
ARGS = ("--market", "JP", "--dataset", "ingest_orders", "--days-back", "3", "--as-of", AS_OF.isoformat())


@pytest.fixture
def container(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container; the scripts run with it as their Azure source and a private temp folder."""
    name = azurite.new_container("sync")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AZURE_CONTAINER", name)
    temp = tmp_path / "script_temp"
    temp.mkdir()
    for variable in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(variable, str(temp))
    return name


def _upload(azurite: Azurite, container: str, tmp_path: Path, files: dict[str, str | bytes]) -> None:
    staging = LandingTree(tmp_path / "staging")
    for name, content in files.items():
        staging.write(name, content)
    azurite.upload_tree(container, staging.root)
    for path in staging.root.rglob("*"):
        if path.is_file():
            path.unlink()


def _out(data_dir: Path, day: dt.date) -> Path:
    return data_dir / "raw" / "JP" / "ingest_orders" / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.parquet"


def test_sync_from_azurite_and_incremental_by_etag(
    azurite: Azurite, container: str, tmp_path: Path, isolated_env: Path
) -> None:
    _upload(azurite, container, tmp_path, {orders_blob_name("JP", day): orders_csv(day, 11 + i, currency="JPY") for i, day in enumerate(DAYS)})

    cold = run_sync_script(*ARGS)

    assert cold.returncode == 0, cold.stderr
    assert cold.summary == {"market": "JP", "dataset": "ingest_orders", "files_listed": 3, "files_synced": 3,
                            "files_skipped": 0, "files_failed": 0, "rows_loaded": 11 + 12 + 13}
    assert not _out(isolated_env, DAYS[3]).exists()  # the day before the window
    table = pq.read_table(_out(isolated_env, DAYS[1]))
    assert table.num_rows == 12
    assert table.schema.field("unit_price").type == pa.decimal128(18, 2)
    assert table.schema.field("order_ts").type == pa.timestamp("us")
    assert set(table.column("_source_blob").to_pylist()) == {orders_blob_name("JP", DAYS[1])}
    assert set(table.column("_file_date").to_pylist()) == {DAYS[1]}
    assert list((tmp_path / "script_temp").iterdir()) == []  # downloads were streamed to temp files, then removed

    warm = run_sync_script(*ARGS)
    assert (warm.summary["files_synced"], warm.summary["files_skipped"]) == (0, 3)

    # same name, new content: Azure gives it a new ETag, so exactly that file is converted again
    _upload(azurite, container, tmp_path, {orders_blob_name("JP", DAYS[0]): orders_csv(DAYS[0], 4, first_id=900, currency="JPY")})
    changed = run_sync_script(*ARGS)
    assert changed.returncode == 0, changed.stderr
    assert (changed.summary["files_synced"], changed.summary["files_skipped"], changed.summary["rows_loaded"]) == (1, 2, 4)
    assert pq.read_table(_out(isolated_env, DAYS[0])).column("order_id").to_pylist() == [900, 901, 902, 903]

    forced = run_sync_script(*ARGS, "--force")
    assert (forced.summary["files_synced"], forced.summary["rows_loaded"]) == (3, 4 + 12 + 13)
    for result in (cold, warm, changed, forced):
        assert ACCOUNT_KEY not in result.stdout + result.stderr


def test_bad_blob_is_rejected_others_sync(azurite: Azurite, container: str, tmp_path: Path, isolated_env: Path) -> None:
    rows = orders_rows(DAYS[1], 30, currency="JPY")
    rows[12][ORDERS_HEADER.index("quantity")] = "x"  # editor line 14
    _upload(azurite, container, tmp_path, {
        orders_blob_name("JP", DAYS[0]): orders_csv(DAYS[0], 5, currency="JPY"),
        orders_blob_name("JP", DAYS[1]): csv_text(ORDERS_HEADER, rows),
    })

    result = run_sync_script(*ARGS)

    assert result.returncode == 65
    assert (f"{orders_blob_name('JP', DAYS[1])} line 14, column 'quantity': expected an integer, got 'x'"
            in result.stderr)
    assert _out(isolated_env, DAYS[0]).is_file() and not _out(isolated_env, DAYS[1]).exists()
    assert (result.summary["files_synced"], result.summary["files_failed"]) == (1, 1)
    assert list((tmp_path / "script_temp").iterdir()) == []


def test_reference_blob_file_date_is_its_last_modified_date(
    azurite: Azurite, container: str, tmp_path: Path, isolated_env: Path
) -> None:
    from azure.storage.blob import BlobServiceClient

    blob = "UK/raw_data/DWH/Oracle/ingest_new_names/ingest_new_names.csv"
    _upload(azurite, container, tmp_path, {blob: "\ufeffcustomer_id,first_order_date\n7,2026-11-01\n8,2026-11-02\n"})
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        modified = service.get_blob_client(container, blob).get_blob_properties().last_modified

    result = run_sync_script("--market", "UK", "--dataset", "ingest_new_names")

    assert result.returncode == 0, result.stderr
    table = pq.read_table(isolated_env / "raw" / "UK" / "ingest_new_names" / "ingest_new_names.parquet")
    assert table.column("first_order_date").to_pylist() == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    assert set(table.column("_file_date").to_pylist()) == {modified.astimezone(ZoneInfo("Europe/London")).date()}


def test_missing_container_is_a_configuration_error(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AZURE_CONTAINER", "no-such-container")

    result = run_sync_script(*ARGS)

    assert result.returncode == 78
    assert "the container does not exist (check AZURE_CONTAINER)" in result.stderr
    assert ACCOUNT_KEY not in result.stdout + result.stderr


def test_a_wrong_account_key_is_a_configuration_error_that_says_so(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    wrong_key = base64.b64encode(b"not the account key, 64 bytes long ............................").decode()
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(ACCOUNT_KEY, wrong_key))
    monkeypatch.setenv("AZURE_CONTAINER", container)

    result = run_sync_script(*ARGS)

    assert result.returncode == 78, result.stderr
    assert "AZURE_STORAGE_CONNECTION_STRING" in result.stderr and "refused" in result.stderr  # names the variable to fix
    assert "Traceback" not in result.stderr
    assert wrong_key not in result.stdout + result.stderr


def test_unreachable_storage_exits_75(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(unreachable))

    result = run_sync_script(*ARGS)

    assert result.returncode == 75, result.stderr
    assert "network error after retries" in result.stderr
    assert ACCOUNT_KEY not in result.stdout + result.stderr


class _BusyStorage(http.server.BaseHTTPRequestHandler):
    """Answers every request like a throttled storage account: 503 ServerBusy with the service's XML body."""

    requests = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        body = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
                b"<Message>The server is busy.</Message></Error>")
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-error-code", "ServerBusy")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_throttled_storage_exits_75_after_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_on_loopback(_BusyStorage, "busy-storage") as url:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(url))
        result = run_sync_script(*ARGS)

    assert result.returncode == 75, result.stderr
    assert "Azure answered HTTP 503 after retries" in result.stderr
    assert _BusyStorage.requests > 1  # the SDK retried before the script gave up


def _sas_signature(sas: str) -> str:
    return dict(part.split("=", 1) for part in sas.split("&"))["sig"]


def test_sync_with_a_sas_token_and_no_account_key(
    azurite: Azurite, tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way a tenant with shared-key access off hands out access: account URL + a read/list SAS."""
    name = azurite.new_container("sas")
    _upload(azurite, name, tmp_path, {orders_blob_name("JP", day): orders_csv(day, 5, currency="JPY") for day in DAYS})
    sas = azurite.container_sas(name)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + sas)  # as the portal shows it, with the '?'
    monkeypatch.setenv("AZURE_CONTAINER", name)

    result = run_sync_script(*ARGS)

    assert result.returncode == 0, result.stderr
    assert result.summary["files_synced"] == 3 and result.summary["rows_loaded"] == 15
    assert _out(isolated_env, DAYS[0]).is_file()
    assert "(SAS token)" in result.stderr
    assert _sas_signature(sas) not in result.stdout + result.stderr


def test_expired_sas_is_a_configuration_error_naming_its_expiry(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = azurite.new_container("sas")
    sas = azurite.container_sas(name, expires_in=dt.timedelta(minutes=-1))
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    monkeypatch.setenv("AZURE_CONTAINER", name)

    result = run_sync_script(*ARGS)

    assert result.returncode == 78, result.stderr
    assert "AZURE_STORAGE_SAS_TOKEN expired at" in result.stderr and "se=" in result.stderr
    assert _sas_signature(sas) not in result.stdout + result.stderr


def test_rejected_account_key_names_the_likely_causes(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    name = azurite.new_container("key")
    wrong_key = "A" * 86 + "=="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(ACCOUNT_KEY, wrong_key))
    monkeypatch.setenv("AZURE_CONTAINER", name)

    result = run_sync_script(*ARGS)

    assert result.returncode == 78, result.stderr
    assert "HTTP 403" in result.stderr and "account key" in result.stderr and "shared-key access" in result.stderr
    assert wrong_key not in result.stdout + result.stderr
