"""The budget ingest's SharePoint path: the real office365 client against a local server speaking ACS + REST.

The server on 127.0.0.1 answers what SharePoint Online answers for app-only access: the realm
challenge on the site URL, the ACS client-credentials token endpoint, contextinfo, the file's
metadata by server-relative path and its `$value` stream, including 401, 403, 404 and 503.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.plugins.loopback_http import free_port, serve_on_loopback
from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"
YEAR = SAMPLE_AS_OF.year
WORKBOOK = f"Daily Sales Budget {YEAR}.xlsx"
SITE_PATH = "/sites/Finance"
FOLDER = f"{SITE_PATH}/Shared Documents/Budget"
REALM = "6f1c2a57-0d0e-4c9b-9a43-3c1b1e0b2d11"
SHAREPOINT_PRINCIPAL = "00000003-0000-0ff1-ce00-000000000000"
CLIENT_ID = "0b5e7a52-8c1d-4f7e-a1c3-9f2b6d4e8a10"
CLIENT_SECRET = "s3cr3t-" + uuid.uuid4().hex  # unique, so finding it in any output is unambiguous


@dataclass
class FakeSharePoint:
    """State of the fake tenant: files by server-relative path, failure switches, request log."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail_file_with: int | None = None  # an HTTP status for the file requests
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    access_token: str = field(default_factory=lambda: uuid.uuid4().hex)


def _handler(state: FakeSharePoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes = b"", content_type: str = "application/json;odata=verbose",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), headers=headers)

        def _odata_error(self, status: int, code: str, message: str) -> None:
            self._json(status, {"error": {"code": code, "message": {"lang": "en-US", "value": message}}})

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {state.access_token}":
                return True
            self._json(401, {"error_description": "Invalid JWT token."},
                       headers={"WWW-Authenticate": f'Bearer realm="{REALM}",client_id="{SHAREPOINT_PRINCIPAL}"'})
            return False

        def do_HEAD(self) -> None:
            # The realm challenge: an anonymous request to the site names the tenant's ACS realm.
            self._send(401, headers={
                "WWW-Authenticate": f'Bearer realm="{REALM}",client_id="{SHAREPOINT_PRINCIPAL}",'
                'trusted_issuers="00000001-0000-0000-c000-000000000000@*"',
            })

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            path = urlsplit(self.path).path
            if path == f"/{REALM}/tokens/OAuth/2":
                self._token(parse_qs(body))
            elif path.lower() != f"{SITE_PATH}/_api/contextinfo".lower():
                self._odata_error(400, "-1, Microsoft.SharePoint.Client.InvalidClientQueryException", "Bad request")
            elif self._authorised():
                self._json(200, {"d": {"GetContextWebInformation": {
                    "FormDigestValue": "0xDIGEST,21 Nov 2026 05:00:00 -0000", "FormDigestTimeoutSeconds": 1800,
                    "LibraryVersion": "16.0.25000.12001", "SiteFullUrl": SITE_PATH, "WebFullUrl": SITE_PATH}}})

        def _token(self, form: dict[str, list[str]]) -> None:
            state.token_requests.append(form)
            expected_client = f"{CLIENT_ID}@{REALM}"
            if form.get("client_id") != [expected_client] or form.get("client_secret") != [CLIENT_SECRET]:
                self._json(401, {"error": "invalid_client",
                                 "error_description": "AADSTS7000215: Invalid client secret provided."})
                return
            self._json(200, {"token_type": "Bearer", "access_token": state.access_token, "expires_in": "3599",
                             "resource": form["resource"][0]})

        def do_GET(self) -> None:
            if not self._authorised():
                return
            split = urlsplit(self.path)
            marker = "/_api/Web/getFileByServerRelativePath(DecodedUrl='"
            if marker.lower() not in split.path.lower():
                self._odata_error(404, "-1, System.ArgumentException", "Unsupported call")
                return
            start = split.path.lower().index(marker.lower()) + len(marker)
            end = split.path.index("')", start)
            file_path = unquote(split.path[start:end]).replace("''", "'")
            if state.fail_file_with == 503:
                self._send(503, b"Service Unavailable", "text/plain", headers={"Retry-After": "1"})
            elif state.fail_file_with == 403:
                self._odata_error(403, "-2147024891, System.UnauthorizedAccessException",
                                  "Access denied. You do not have permission to perform this action.")
            elif file_path not in state.files:
                self._odata_error(404, "-2130575338, System.IO.FileNotFoundException",
                                  f"The file {file_path} does not exist.")
            elif split.path.endswith("/$value"):
                state.downloads.append(file_path)
                self._send(200, state.files[file_path], "application/octet-stream")
            else:
                self._json(200, {"d": {"__metadata": {"type": "SP.File"}, "Id": str(uuid.uuid4()),
                                       "ServerRelativePath": {"DecodedUrl": file_path}}})

    return Handler


@pytest.fixture
def sharepoint(sample_landing: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSharePoint]:
    state = FakeSharePoint()
    state.files[f"{FOLDER}/{WORKBOOK}"] = (sample_landing / "sharepoint" / WORKBOOK).read_bytes()
    with serve_on_loopback(_handler(state), "fake-sharepoint") as base:
        monkeypatch.setenv("SHAREPOINT_SITE_URL", base + SITE_PATH)
        monkeypatch.setenv("SHAREPOINT_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("SHAREPOINT_BUDGET_FOLDER", FOLDER)
        monkeypatch.setenv("SHAREPOINT_ACS_TOKEN_URL", base + "/{realm}/tokens/OAuth/2")
        yield state


def run_ingest(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--year", str(YEAR), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert CLIENT_SECRET not in result.stdout + result.stderr
    return result


def outputs(data_dir: Path) -> list[Path]:
    return [data_dir / "raw" / "budget" / f"{name}_{YEAR}.csv" for name in ("daily_sales_budget", "exchange_rates")]


def test_downloads_with_app_credentials_and_matches_the_local_ingest(
    sharepoint: FakeSharePoint, isolated_env: Path, sample_landing: Path, tmp_path: Path
) -> None:
    result = run_ingest()
    assert result.returncode == 0, result.stderr
    assert sharepoint.downloads == [f"{FOLDER}/{WORKBOOK}"]
    token_request = sharepoint.token_requests[0]
    assert token_request["grant_type"] == ["client_credentials"]
    assert token_request["resource"] == [f"{SHAREPOINT_PRINCIPAL}/127.0.0.1@{REALM}"]
    from_sharepoint = [p.read_bytes() for p in outputs(isolated_env)]

    local_copy = tmp_path / "local" / WORKBOOK
    local_copy.parent.mkdir()
    shutil.copy(sample_landing / "sharepoint" / WORKBOOK, local_copy)
    for path in outputs(isolated_env):
        path.unlink()
    local = run_ingest("--source", str(local_copy.parent))
    assert local.returncode == 0
    assert [p.read_bytes() for p in outputs(isolated_env)] == from_sharepoint
    assert json.loads(result.stdout.splitlines()[-1]) == json.loads(local.stdout.splitlines()[-1])


def test_rejected_secret_is_a_configuration_error(
    sharepoint: FakeSharePoint, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", CLIENT_SECRET + "-old")
    result = run_ingest()
    assert result.returncode == 78
    assert "app credentials were rejected at the token endpoint (HTTP 401)" in result.stderr
    assert "SHAREPOINT_CLIENT_SECRET" in result.stderr
    assert CLIENT_SECRET not in result.stdout + result.stderr  # neither the wrong nor the right one
    assert sharepoint.token_requests and not sharepoint.downloads


def test_missing_workbook_is_bad_input_and_keeps_earlier_outputs(
    sharepoint: FakeSharePoint, isolated_env: Path
) -> None:
    assert run_ingest().returncode == 0
    before = [p.read_bytes() for p in outputs(isolated_env)]
    sharepoint.files.clear()
    result = run_ingest()
    assert result.returncode == 65
    assert f"workbook '{FOLDER}/{WORKBOOK}' not found (HTTP 404)" in result.stderr
    assert [p.read_bytes() for p in outputs(isolated_env)] == before


def test_missing_workbook_can_be_skipped(sharepoint: FakeSharePoint, isolated_env: Path) -> None:
    sharepoint.files.clear()
    result = run_ingest("--skip-missing")
    assert result.returncode == 0
    assert json.loads(result.stdout.splitlines()[-1])["skipped"] is True


def test_access_denied_is_a_configuration_error(sharepoint: FakeSharePoint) -> None:
    sharepoint.fail_file_with = 403
    result = run_ingest()
    assert result.returncode == 78
    assert "access denied" in result.stderr and "(HTTP 403)" in result.stderr


def test_service_unavailable_is_transient(sharepoint: FakeSharePoint) -> None:
    sharepoint.fail_file_with = 503
    result = run_ingest()
    assert result.returncode == 75
    assert "HTTP 503" in result.stderr and "a retry may succeed" in result.stderr


def test_unreachable_site_is_transient(sharepoint: FakeSharePoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREPOINT_SITE_URL", f"http://127.0.0.1:{free_port()}{SITE_PATH}")  # nobody listens
    result = run_ingest()
    assert result.returncode == 75
    assert "network error" in result.stderr
