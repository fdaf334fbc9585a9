"""Fixtures: a real Azurite blob service on 127.0.0.1 for the session, plus the CSV trees and script runner
the sync tests (tests/test_sync_*.py) build their cases from.

Azurite is installed on first use by scripts/dev/ensure_azurite.py (npm, pinned version). If it cannot be
installed or started, the fixture fails loudly: the Azure tests must not silently turn into skips.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.loopback_http import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60
ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def dev_connection_string(base_url: str) -> str:
    """The development account's connection string for a blob service at `base_url` (http://host:port)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base_url}/{ACCOUNT};"
    )


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob endpoint."""

    port: int

    @property
    def connection_string(self) -> str:
        return dev_connection_string(f"http://127.0.0.1:{self.port}")

    def new_container(self, prefix: str = "test") -> str:
        """Create a container with a unique name (tests share one Azurite) and return its name."""
        from azure.storage.blob import BlobServiceClient

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        with BlobServiceClient.from_connection_string(self.connection_string) as service:
            service.create_container(name)
        return name

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def container_sas(self, container: str, expires_in: dt.timedelta = dt.timedelta(hours=1),
                      permission: str = "rl") -> str:
        """A container SAS token (read + list by default) signed with the account key, as an admin hands out."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        now = dt.datetime.now(dt.timezone.utc)
        return generate_container_sas(
            ACCOUNT, container, account_key=ACCOUNT_KEY, permission=ContainerSasPermissions.from_string(permission),
            start=now - dt.timedelta(minutes=5), expiry=now + expires_in,
        )

    def upload_tree(self, container: str, root: Path) -> list[str]:
        """Upload every file under `root` as a blob named by its relative posix path; return the names."""
        from azure.storage.blob import BlobServiceClient

        names = []
        with BlobServiceClient.from_connection_string(self.connection_string) as service:
            client = service.get_container_client(container)
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                name = path.relative_to(root).as_posix()
                with path.open("rb") as handle:
                    client.upload_blob(name, handle, overwrite=True)
                names.append(name)
        return names


def _azurite_main_js() -> Path:
    """Install (if needed) and return Azurite's blob entry script, run with node directly.

    Running `node main.js` rather than the npm shim means the PID we hold is Azurite's own, so
    stopping it by PID works the same on Windows (where the shim is a .cmd wrapper) and Linux.
    """
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "dev" / "ensure_azurite.py")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"Azurite could not be installed: {result.stderr.strip() or result.stdout.strip()}", pytrace=False)
    exe = Path(result.stdout.strip().splitlines()[-1])
    main_js = exe.parents[1] / "azurite" / "dist" / "src" / "blob" / "main.js"
    if not main_js.is_file():
        pytest.fail(f"Azurite is installed but {main_js} is missing; delete .tools/azurite and retry", pytrace=False)
    return main_js


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"Azurite exited with code {process.returncode} during start-up: {output[-2000:]}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"Azurite did not answer on 127.0.0.1:{port} within {STARTUP_TIMEOUT_S}s", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A real Azurite blob service on 127.0.0.1 and a free port, stopped by PID at session end."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js ('node') is not on PATH; it is needed to run Azurite for the Azure tests", pytrace=False)
    main_js = _azurite_main_js()
    workspace = tmp_path_factory.mktemp("azurite")
    port = free_port()
    command = [
        node, str(main_js), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--inMemoryPersistence",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workspace)
    try:
        _wait_until_listening(process, port)
        yield Azurite(port=port)
    finally:
        _stop(process)


# --- CSV trees and a script runner for the sync tests (tests/test_sync_*.py) ---------------------------

SYNC_SCRIPT = REPO_ROOT / "bat_file_data_refresh" / "python" / "azure_sync" / "sync_azure.py"
ORDERS_HEADER = [
    "order_id", "order_line_id", "order_date", "order_ts", "customer_id", "product_sku", "channel",
    "quantity", "unit_price", "currency", "status",
]


MARKET_CURRENCY = {"UK": "GBP", "DE": "EUR", "IT": "EUR", "JP": "JPY"}


def orders_rows(day: dt.date, count: int, first_id: int = 1, currency: str = "GBP") -> list[list[str]]:
    """`count` valid contract rows for `day`, as the text cells a CSV holds."""
    channels, statuses = ["TV", "WEB", "APP", "PHONE"], ["COMPLETED", "SHIPPED", "CANCELLED", "RETURNED"]
    return [
        [
            str(first_id + i), str(10 * (first_id + i)), day.isoformat(),
            f"{day.isoformat()} {i % 24:02d}:{i % 60:02d}:{(7 * i) % 60:02d}", str(1000 + i), f"SKU-{i % 7:03d}",
            channels[i % 4], str(1 + i % 5), f"{(i * 37) % 10000 / 100:.2f}", currency, statuses[i % 4],
        ]
        for i in range(count)
    ]


def csv_text(header: list[str], rows: list[list[str]], newline: str = "\n") -> str:
    return newline.join([",".join(header), *(",".join(row) for row in rows)]) + newline


def orders_csv(day: dt.date, rows: int, first_id: int = 1, currency: str = "GBP") -> str:
    """A valid orders file for `day` with `rows` lines."""
    return csv_text(ORDERS_HEADER, orders_rows(day, rows, first_id, currency))


def orders_blob_name(market: str, day: dt.date, dataset: str = "ingest_orders") -> str:
    return f"{market}/raw_data/DWH/Oracle/{dataset}/{day:%Y}/{dataset}_{day:%Y%m%d}.csv"


@dataclass
class SyncRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


class LandingTree:
    """A local landing folder (the container layout) that tests fill file by file."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, blob_name: str) -> Path:
        return self.root.joinpath(*blob_name.split("/"))

    def write(self, blob_name: str, content: str | bytes) -> Path:
        path = self.path(blob_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def write_orders(self, market: str, day: dt.date, rows: int = 5, first_id: int = 1) -> Path:
        return self.write(orders_blob_name(market, day), orders_csv(day, rows, first_id, MARKET_CURRENCY[market]))


def run_sync_script(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> SyncRun:
    """Run sync_azure.py as a subprocess with the test's environment (DATA_DIR etc.) plus `env`."""
    result = subprocess.run(
        [sys.executable, str(SYNC_SCRIPT), *args],
        capture_output=True, text=True, timeout=timeout, check=False, env={**os.environ, **(env or {})},
    )
    return SyncRun(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def sync_landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LandingTree:
    """An empty landing folder, set as LANDING_DIR for the scripts the test runs."""
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(root))
    return LandingTree(root)
