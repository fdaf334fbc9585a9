"""Download the budget workbook from SharePoint Online with app-only (ACS client id + secret) credentials.

Failures are sorted by whether a retry can help: network trouble, throttling and 5xx are
transient (exit 75); rejected credentials or permissions are configuration errors (78); a
missing workbook is bad input (65). The client secret never appears in a message.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests
from office365.runtime.auth.client_credential import ClientCredential
from office365.runtime.auth.providers.acs_token_provider import ACSTokenProvider
from office365.runtime.client_request_exception import ClientRequestException
from office365.sharepoint.client_context import ClientContext

from pipeline_common.script_support import BadDataError, ConfigurationError, TransientError
from pipeline_common.settings import env

SETTINGS = ("SHAREPOINT_SITE_URL", "SHAREPOINT_CLIENT_ID", "SHAREPOINT_CLIENT_SECRET", "SHAREPOINT_BUDGET_FOLDER")
# Optional: the ACS token endpoint, `{realm}` is replaced by the tenant realm the site announces.
# Unset means the library's own endpoint (login.microsoftonline.com); set it for another cloud.
TOKEN_URL_VAR = "SHAREPOINT_ACS_TOKEN_URL"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
AUTH_STATUS = {400, 401, 403}
CHUNK_BYTES = 1024 * 1024
# (connect, read) seconds: a stalled server must fail (and be retried), not hang the run.
HTTP_TIMEOUT = (15, 120)


class MissingWorkbookError(BadDataError):
    """The workbook for the requested year is not there (yet)."""


@dataclass(frozen=True)
class SharePointSettings:
    site_url: str
    client_id: str
    client_secret: str
    folder: str
    token_url: str | None = None

    def __repr__(self) -> str:  # the secret must not reach a log through repr()
        return f"SharePointSettings(site_url={self.site_url!r}, folder={self.folder!r})"

    def file_path(self, file_name: str) -> str:
        return str(PurePosixPath(self.folder.replace("\\", "/")) / file_name)


def sharepoint_settings() -> SharePointSettings | None:
    """The settings when all four variables are set, else None (the local landing folder is used)."""
    values = [env(name) for name in SETTINGS]
    if not all(values):
        return None
    site, client_id, secret, folder = (v.strip() for v in values)  # type: ignore[union-attr]
    return SharePointSettings(site.rstrip("/"), client_id, secret, folder, env(TOKEN_URL_VAR))


class _AcsTokenProvider(ACSTokenProvider):
    """The library's ACS app-only flow, with the token endpoint configurable (another cloud, a test server)."""

    def __init__(self, settings: SharePointSettings):
        super().__init__(settings.site_url, ClientCredential(settings.client_id, settings.client_secret))
        self._token_url = settings.token_url

    def get_security_token_service_url(self, realm: str | None) -> str:
        if self._token_url:
            return self._token_url.replace("{realm}", realm or "")
        return super().get_security_token_service_url(realm)


def _scrub(text: str, settings: SharePointSettings) -> str:
    return text.replace(settings.client_secret, "***") if settings.client_secret else text


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an office365/requests error, following the exception chain."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        response = getattr(current, "response", None)
        if response is not None and getattr(response, "status_code", None) is not None:
            return int(response.status_code)
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _classify(exc: BaseException, settings: SharePointSettings, file_path: str, step: str) -> Exception:
    status = _status_of(exc)
    detail = _scrub(_short(exc), settings)
    where = f"SharePoint {settings.site_url}"
    if status in AUTH_STATUS and step == "token":
        return ConfigurationError(
            f"{where}: the app credentials were rejected at the token endpoint (HTTP {status}); "
            f"check SHAREPOINT_CLIENT_ID and SHAREPOINT_CLIENT_SECRET: {detail}"
        )
    if status in (401, 403):
        return ConfigurationError(
            f"{where}: access denied to '{file_path}' (HTTP {status}); the app needs read permission on the site"
        )
    if status == 404:
        return MissingWorkbookError(f"{where}: workbook '{file_path}' not found (HTTP 404)")
    if status in TRANSIENT_STATUS or status is None:
        reason = f"HTTP {status}" if status else "network error"
        return TransientError(f"{where}: {step} failed ({reason}), a retry may succeed: {detail}")
    return ConfigurationError(f"{where}: {step} failed (HTTP {status}): {detail}")


def _get_token(provider: _AcsTokenProvider, settings: SharePointSettings, file_path: str):
    try:
        return provider.get_app_only_access_token()
    except AssertionError:
        # The site answered without a realm: not a SharePoint Online site URL.
        raise ConfigurationError(
            f"SharePoint {settings.site_url}: the site did not announce an ACS realm; check SHAREPOINT_SITE_URL"
        ) from None
    except (ValueError, requests.RequestException) as exc:
        raise _classify(exc, settings, file_path, "token") from None


def download_workbook(settings: SharePointSettings, file_name: str) -> Path:
    """Stream `{folder}/{file_name}` to a temporary file and return its path (the caller deletes it)."""
    file_path = settings.file_path(file_name)
    provider = _AcsTokenProvider(settings)
    context = (
        ClientContext(settings.site_url)
        .with_access_token(lambda: _get_token(provider, settings, file_path))
        .with_transport(timeout=HTTP_TIMEOUT)
    )
    fd, temp_name = tempfile.mkstemp(prefix="budget-", suffix=".xlsx")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            remote = context.web.get_file_by_server_relative_path(file_path)
            remote.download_session(handle, chunk_size=CHUNK_BYTES).execute_query()
    except (ClientRequestException, requests.RequestException) as exc:
        temp.unlink(missing_ok=True)
        raise _classify(exc, settings, file_path, "download") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp
