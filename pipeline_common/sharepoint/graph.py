"""Microsoft Graph calls with the pipeline's retry and error rules, and the site and document library
they read (office365-rest-python-client's GraphClient, signed in by signin.py): site by URL, document
library by the folder's first segment. The app needs only `Sites.Selected` with a read grant on the
one site (docs/sources.md).

Azure ACS app-only sign-in for SharePoint Online was retired on 2 April 2026: a configuration that
still looks like it (no tenant, or the old ACS token URL) is a configuration error that says so.
Failures are sorted by what fixes them: 78 configuration (credentials, tenant, grant, site or
library), 65 bad data (no workbook), 75 transient (network, throttling, 5xx) after in-process
retries that honour Retry-After. Secrets and tokens never reach a message.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pipeline_common import reachability, tls
from pipeline_common.backoff import exponential_delay
from pipeline_common.script_support import ConfigurationError, TransientError

from pipeline_common.sharepoint.settings import (
    DEFAULT_GRAPH_ENDPOINT,
    FOLDER,
    GRAPH_ENDPOINT,
    REACHABILITY_KIND,
    SITE_URL,
    TENANT,
    SharePointSettings,
)
from pipeline_common.sharepoint.signin import (
    SignedInClient,
    network_failure,
)

CHUNK_BYTES = 1024 * 1024
ATTEMPTS = 3  # per call, in process; then exit 75 and Dagster's RetryPolicy takes over
MAX_RETRY_AFTER_SECONDS = 30.0  # a longer Retry-After is left to Dagster's retry rather than slept through
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Graph calls with the pipeline's retry and error rules
# ---------------------------------------------------------------------------------------------

def _status_and_code(exc: BaseException) -> tuple[int | None, str, Any]:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    code = str(getattr(exc, "code", "") or "")
    return (int(status) if status is not None else None), code, response


def _retry_after(response: Any) -> float | None:
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def graph_call(client: SignedInClient, step: str, call: Callable[[], T], on_retry: Callable[[], None] | None = None,
          not_found: Callable[[], Exception] | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run one Graph call: transient answers retried in process (Retry-After honoured), the rest classified."""
    import requests
    from office365.runtime.client_request_exception import ClientRequestException

    settings = client.settings
    where = f"SharePoint {settings.site_url}"
    attempts = client.attempts  # 1 inside a sensor tick: the next tick is the retry
    for attempt in range(1, attempts + 1):
        try:
            result = call()
            reachability.mark_working(REACHABILITY_KIND, settings.fingerprint)
            return result
        except ClientRequestException as exc:
            status, code, response = _status_and_code(exc)
            if status == 404 and not_found is not None:
                raise not_found() from None
            if status not in TRANSIENT_STATUS:
                raise _graph_failure(settings, step, status, code) from None
            wait = _retry_after(response)
            reason = f"HTTP {status}" + (f", Retry-After {wait:.0f} s" if wait is not None else "")
            if attempt == attempts or (wait is not None and wait > MAX_RETRY_AFTER_SECONDS):
                kind = "throttled" if status == 429 else "unavailable"
                raise TransientError(
                    f"{where}: {step} {kind} ({reason}) after {attempt} attempt(s); a retry later may succeed"
                ) from None
        except requests.RequestException as exc:
            if attempt == attempts or tls.certificate_failure(exc):  # a certificate is never retried
                network_failure(settings, exc, GRAPH_ENDPOINT if settings.graph_endpoint != DEFAULT_GRAPH_ENDPOINT
                                 else SITE_URL, settings.graph_endpoint, step)
            wait = None
        delay = wait if wait is not None else exponential_delay(attempt - 1, 1.0, 8.0, spread=0.25)
        if on_retry is not None:
            on_retry()
        sleep(delay)
    raise AssertionError("unreachable")


def _graph_failure(settings: SharePointSettings, step: str, status: int | None, code: str) -> Exception:
    """The refusal by its HTTP status and Graph's error code (`accessDenied`, `invalidRequest`), never the error's
    message: Graph and the proxies in front of it may quote the request, a token among it."""
    where = f"SharePoint {settings.site_url}"
    code = code if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,63}", code or "") else ""
    if status == 401:
        return ConfigurationError(
            f"{where}: Microsoft Graph rejected the app's token at {step} (HTTP 401 {code}): check that {TENANT} "
            f"is the tenant of the site and that the app registration has the Sites.Selected application "
            f"permission with admin consent"
        )
    if status == 403:
        return ConfigurationError(
            f"{where}: app {settings.client_id} is not granted on this site (HTTP 403 {code} at {step}): with "
            "Sites.Selected an administrator must grant the app 'read' on this one site through Microsoft "
            "Graph (POST /sites/{site-id}/permissions, docs/sources.md)"
        )
    return ConfigurationError(f"{where}: {step} failed (HTTP {status}{' ' + code if code else ''}): check "
                              f"{SITE_URL} and {FOLDER}, and the app's grant on the site")


def _site_id(client: SignedInClient) -> str:
    settings = client.settings
    site = graph_call(
        client, "site lookup", lambda: client.graph.sites.get_by_url(settings.site_url).execute_query(),
        not_found=lambda: ConfigurationError(
            f"SharePoint site '{settings.site_url}' not found (HTTP 404): check {SITE_URL} (open the site in a "
            "browser and copy its address up to the site name)"
        ),
    )
    return str(site.id)


def document_library(client: SignedInClient) -> tuple[str, str, str]:
    """(drive id, library name, path inside the library) of SHAREPOINT_BUDGET_FOLDER."""
    settings = client.settings
    cached = client.drives.get(settings.folder)
    if cached is not None:
        return cached[0], cached[1], _inside(settings, cached[1])
    site_id = _site_id(client)
    drives = graph_call(client, "library lookup", lambda: client.graph.sites[site_id].drives.get().execute_query())
    folder = _relative_folder(settings)
    best: tuple[int, str, str] | None = None
    names = []
    for drive in drives:
        url_name = unquote(urlsplit(str(drive.web_url or "")).path).rstrip("/")
        url_name = url_name[len(settings.site_path):].strip("/") if url_name.startswith(settings.site_path) else url_name.rsplit("/", 1)[-1]
        names.append(f"'{url_name}'" + (f" ({drive.name})" if drive.name and drive.name != url_name else ""))
        for candidate in {url_name, str(drive.name or "")}:
            if candidate and (folder.lower() == candidate.lower() or folder.lower().startswith(candidate.lower() + "/")):
                if best is None or len(candidate) > best[0]:
                    best = (len(candidate), str(drive.id), candidate)
    if best is None:
        raise ConfigurationError(
            f"SharePoint site {settings.site_url}: no document library for {FOLDER} '{settings.folder}' (HTTP 404); "
            f"libraries on the site: {', '.join(names) or 'none visible to the app'}. {FOLDER} starts with the "
            "library, e.g. 'Shared Documents/Budget'"
        )
    client.drives[settings.folder] = (best[1], best[2])
    return best[1], best[2], _inside(settings, best[2])


def _relative_folder(settings: SharePointSettings) -> str:
    folder = settings.folder.replace("\\", "/").strip("/")
    site = settings.site_path.strip("/")
    if site and folder.lower().startswith(site.lower() + "/"):  # a server-relative folder such as /sites/X/Shared Documents
        folder = folder[len(site) + 1:]
    return folder


def _inside(settings: SharePointSettings, library: str) -> str:
    return _relative_folder(settings)[len(library):].strip("/")


