"""SharePoint Online through Microsoft Graph as a Microsoft Entra ID app-only client (contract section 1).

Shared by the budget ingest (download) and the budget sensor (eTag polling, no download). The
app signs in with a client secret or a certificate through msal (the Microsoft identity platform's
client-credentials grant) and reads the site's document library through office365-rest-python-
client's GraphClient: site by URL, document library by the folder's first segment, drive item by
path, content. It needs only `Sites.Selected` with a read grant on the one site (docs/sources.md).

Azure ACS app-only sign-in for SharePoint Online was retired on 2 April 2026: a configuration that
still looks like it (no tenant, or the old ACS token URL) is a configuration error that says so.
Failures are sorted by what fixes them: 78 configuration (credentials, tenant, grant, site or
library), 65 bad data (no workbook), 75 transient (network, throttling, 5xx) after in-process
retries that honour Retry-After. Secrets and tokens never reach a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

from pipeline_common import reachability
from pipeline_common.backoff import exponential_delay
from pipeline_common.script_support import BadDataError, ConfigurationError, TransientError
from pipeline_common.secrets import register, scrub
from pipeline_common.settings import env

SITE_URL = "SHAREPOINT_SITE_URL"
FOLDER = "SHAREPOINT_BUDGET_FOLDER"
TENANT = "SHAREPOINT_TENANT_ID"
CLIENT_ID = "SHAREPOINT_CLIENT_ID"
CLIENT_SECRET = "SHAREPOINT_CLIENT_SECRET"
CERTIFICATE_PATH = "SHAREPOINT_CERTIFICATE_PATH"
CERTIFICATE_THUMBPRINT = "SHAREPOINT_CERTIFICATE_THUMBPRINT"
CERTIFICATE_PASSWORD = "SHAREPOINT_CERTIFICATE_PASSWORD"
# Optional, for the national clouds (e.g. https://login.microsoftonline.us, https://graph.microsoft.us).
AUTHORITY_HOST = "SHAREPOINT_AUTHORITY_HOST"
GRAPH_ENDPOINT = "SHAREPOINT_GRAPH_ENDPOINT"
# The retired ACS path's only variable of its own: its presence alone says "old configuration".
ACS_TOKEN_URL = "SHAREPOINT_ACS_TOKEN_URL"

GROUP = (SITE_URL, FOLDER, TENANT, CLIENT_ID, CLIENT_SECRET, CERTIFICATE_PATH, CERTIFICATE_THUMBPRINT,
         CERTIFICATE_PASSWORD, AUTHORITY_HOST, GRAPH_ENDPOINT)
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com"
KNOWN_AUTHORITY_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
                         "login.microsoftonline.de", "login.windows.net", "login.microsoft.com")
ACS_RETIRED = (
    "Azure ACS app-only sign-in for SharePoint Online was retired on 2 April 2026 (Microsoft 365 message "
    "center MC693863), so this configuration can no longer sign in. Register a Microsoft Entra ID app, "
    f"grant it Sites.Selected on the site, and set {TENANT}, {CLIENT_ID} and either {CLIENT_SECRET} or "
    f"{CERTIFICATE_PATH} + {CERTIFICATE_THUMBPRINT} (docs/sources.md walks through it)"
)
REACHABILITY_KIND = "sharepoint"
HTTP_TIMEOUT = (15, 120)  # (connect, read) seconds: a stalled server fails (and is retried), never hangs
CHUNK_BYTES = 1024 * 1024
ATTEMPTS = 3  # per call, in process; then exit 75 and Dagster's RetryPolicy takes over
MAX_RETRY_AFTER_SECONDS = 30.0  # a longer Retry-After is left to Dagster's retry rather than slept through
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
T = TypeVar("T")


class MissingWorkbookError(BadDataError):
    """The workbook for the requested year is not there (yet)."""


@dataclass(frozen=True)
class Certificate:
    path: Path
    thumbprint: str  # SHA-1, upper-case hex, as the Entra admin center shows it
    private_key_pem: str = field(repr=False)
    expires: dt.datetime | None = None


@dataclass(frozen=True)
class SharePointSettings:
    site_url: str
    folder: str
    tenant: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate: Certificate | None = field(default=None, repr=False)
    authority_host: str = DEFAULT_AUTHORITY_HOST
    graph_endpoint: str = DEFAULT_GRAPH_ENDPOINT

    @property
    def credential_kind(self) -> str:
        return "certificate" if self.certificate else "client secret"

    @property
    def site_path(self) -> str:
        return unquote(urlsplit(self.site_url).path).rstrip("/")

    def file_path(self, file_name: str) -> str:
        return str(PurePosixPath(self.folder.replace("\\", "/")) / file_name)

    @property
    def fingerprint(self) -> str:
        """Non-secret identity of the configuration (for 'has this ever worked')."""
        return reachability.fingerprint(self.site_url, self.tenant, self.client_id, self.authority_host,
                                        self.graph_endpoint)

    @property
    def cache_key(self) -> str:
        """Identity including the credential (hashed, in memory only): a new secret means a new client."""
        secret = self.client_secret or (self.certificate.thumbprint if self.certificate else "")
        return hashlib.sha256(f"{self.fingerprint}\x1f{secret}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Configuration: the variable group, checked before any network call
# ---------------------------------------------------------------------------------------------

def sharepoint_settings(now: dt.datetime | None = None) -> SharePointSettings | None:
    """The SharePoint settings; None when the whole group is unset (the local landing folder is used).

    A half-set group, an ACS-era configuration or an unusable certificate is a ConfigurationError
    naming the variable to set or fix.
    """
    values = {name: (env(name) or "").strip() for name in GROUP}
    if env(ACS_TOKEN_URL):
        raise ConfigurationError(f"{ACS_TOKEN_URL} is set: {ACS_RETIRED}")
    if not any(values.values()):
        return None
    if values[SITE_URL] and values[CLIENT_ID] and values[CLIENT_SECRET] and not values[TENANT]:
        raise ConfigurationError(f"{TENANT} is not set, so this looks like the old ACS configuration: {ACS_RETIRED}")
    missing = [name for name in (SITE_URL, FOLDER, TENANT, CLIENT_ID) if not values[name]]
    has_secret = bool(values[CLIENT_SECRET])
    has_certificate = bool(values[CERTIFICATE_PATH] or values[CERTIFICATE_THUMBPRINT] or values[CERTIFICATE_PASSWORD])
    if has_secret and has_certificate:
        raise ConfigurationError(
            f"SharePoint has both a client secret ({CLIENT_SECRET}) and a certificate ({CERTIFICATE_PATH}) "
            "configured: keep one (the certificate is the stronger choice, docs/sources.md)"
        )
    if has_certificate:
        missing += [name for name in (CERTIFICATE_PATH, CERTIFICATE_THUMBPRINT) if not values[name]]
    elif not has_secret:
        missing.append(f"{CLIENT_SECRET} (or {CERTIFICATE_PATH} + {CERTIFICATE_THUMBPRINT})")
    if missing:
        raise ConfigurationError(
            f"SharePoint is half configured: set {', '.join(missing)} (or unset every SHAREPOINT_ variable "
            "to read the workbook from $LANDING_DIR/sharepoint/)"
        )
    site_url = values[SITE_URL].rstrip("/")
    site = urlsplit(site_url)
    if site.scheme != "https" or not site.hostname or not site.path.strip("/"):
        raise ConfigurationError(
            f"{SITE_URL} must be the site's address, e.g. https://contoso.sharepoint.com/sites/Finance"
        )
    if not (_GUID.match(values[TENANT]) or _DOMAIN.match(values[TENANT])):
        raise ConfigurationError(
            f"{TENANT} must be the directory (tenant) ID, a GUID, or a domain such as contoso.onmicrosoft.com"
        )
    if not _GUID.match(values[CLIENT_ID]):
        raise ConfigurationError(f"{CLIENT_ID} must be the app registration's Application (client) ID, a GUID")
    if has_secret:
        register(values[CLIENT_SECRET])
    register(values[CERTIFICATE_PASSWORD])
    certificate = None
    if has_certificate:
        certificate = load_certificate(
            Path(values[CERTIFICATE_PATH]).expanduser(), values[CERTIFICATE_THUMBPRINT],
            values[CERTIFICATE_PASSWORD] or None, now,
        )
    return SharePointSettings(
        site_url=site_url,
        folder=values[FOLDER].strip("/\\ "),
        tenant=values[TENANT],
        client_id=values[CLIENT_ID],
        client_secret=values[CLIENT_SECRET] or None,
        certificate=certificate,
        authority_host=_endpoint(values[AUTHORITY_HOST] or DEFAULT_AUTHORITY_HOST, AUTHORITY_HOST),
        graph_endpoint=_endpoint(values[GRAPH_ENDPOINT] or DEFAULT_GRAPH_ENDPOINT, GRAPH_ENDPOINT),
    )


def _endpoint(value: str, variable: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigurationError(f"{variable} must be an https:// address, e.g. {DEFAULT_GRAPH_ENDPOINT}")
    return value.rstrip("/")


def normalise_thumbprint(value: str) -> str:
    return re.sub(r"[\s:]", "", value).upper()


def load_certificate(path: Path, thumbprint: str, password: str | None, now: dt.datetime | None = None) -> Certificate:
    """The private key (PEM, or a .pfx/.p12 as Windows exports it) and its thumbprint, checked locally."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    wanted = normalise_thumbprint(thumbprint)
    if not re.fullmatch(r"[0-9A-F]{40}", wanted):
        raise ConfigurationError(
            f"{CERTIFICATE_THUMBPRINT} must be the certificate's SHA-1 thumbprint, 40 hex digits, as the "
            "app registration's 'Certificates & secrets' page shows it"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{CERTIFICATE_PATH}: cannot read '{path}': {exc.strerror or exc}") from None
    secret = password.encode() if password else None
    certificate = None
    try:
        if path.suffix.lower() in (".pfx", ".p12"):
            key, certificate, _ = pkcs12.load_key_and_certificates(data, secret)
            if key is None:
                raise ConfigurationError(f"{CERTIFICATE_PATH}: '{path}' holds no private key")
        else:
            key = serialization.load_pem_private_key(data, secret)
            if b"-----BEGIN CERTIFICATE-----" in data:
                certificate = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----"):])
    except TypeError:  # encrypted without a password, or a password for an unencrypted key
        hint = (f"the key is encrypted: set {CERTIFICATE_PASSWORD}" if not password
                else f"the key is not encrypted: unset {CERTIFICATE_PASSWORD}")
        raise ConfigurationError(f"{CERTIFICATE_PATH}: cannot open '{path}': {hint}") from None
    except ValueError:
        hint = (f"wrong {CERTIFICATE_PASSWORD}, or not a PEM private key / PKCS#12 file" if password
                else "not a PEM private key / PKCS#12 (.pfx) file")
        raise ConfigurationError(f"{CERTIFICATE_PATH}: cannot open '{path}': {hint}") from None
    expires = None
    if certificate is not None:
        actual = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1
        if actual != wanted:
            raise ConfigurationError(
                f"{CERTIFICATE_THUMBPRINT} is {wanted} but the certificate in '{path}' has thumbprint {actual}: "
                "set the thumbprint of this certificate (and upload it to the app registration)"
            )
        expires = certificate.not_valid_after_utc
        if expires <= (now or dt.datetime.now(dt.timezone.utc)):
            raise ConfigurationError(
                f"the certificate in '{path}' ({actual}) expired on {expires:%Y-%m-%d}: create a new one and "
                "upload it to the app registration"
            )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Certificate(path=path, thumbprint=wanted, private_key_pem=pem, expires=expires)


# ---------------------------------------------------------------------------------------------
# Sign-in: msal's client-credentials grant (secret, or a certificate-signed client assertion)
# ---------------------------------------------------------------------------------------------

# AADSTS codes that name what to fix (https://learn.microsoft.com/entra/identity-platform/reference-error-codes)
_AADSTS_HINTS = {
    "7000215": f"the client secret is wrong: set {CLIENT_SECRET} to the secret's Value (not its Secret ID)",
    "7000222": f"the client secret has expired: create a new one in the app registration and set {CLIENT_SECRET}",
    "700027": (f"the certificate is not accepted: upload the certificate with thumbprint {{thumbprint}} to the "
               f"app registration ('Certificates & secrets'), or fix {CERTIFICATE_THUMBPRINT}"),
    "700016": f"no app with {CLIENT_ID} {{client_id}} in tenant {{tenant}}: check {CLIENT_ID} and {TENANT}",
    "90002": f"tenant {{tenant}} not found: check {TENANT} (the Directory (tenant) ID of your Microsoft 365 tenant)",
    "900023": f"{TENANT} {{tenant}} is not a valid tenant ID or domain",
    "90033": f"tenant {{tenant}} not found: check {TENANT}",
    "7000112": "the app registration (or its service principal) is disabled in the tenant",
    "500011": "the resource (Microsoft Graph) is not available in this tenant's cloud: check SHAREPOINT_GRAPH_ENDPOINT",
}


@dataclass
class _Client:
    """One signed-in GraphClient with its msal app (token cache) and the resolved site and library."""

    settings: SharePointSettings
    app: Any
    graph: Any
    drives: dict[str, tuple[str, str]] = field(default_factory=dict)  # folder -> (drive id, library name)


_clients: dict[str, _Client] = {}


def _classify_token_failure(settings: SharePointSettings, result: dict[str, Any]) -> Exception:
    codes = [str(c) for c in result.get("error_codes") or []]
    description = str(result.get("error_description") or "")
    found = re.findall(r"AADSTS(\d+)", description)
    codes += found
    error = str(result.get("error") or "")
    where = f"Microsoft Entra ID sign-in of app {settings.client_id} (tenant {settings.tenant}, {settings.credential_kind})"
    first_line = scrub(description.splitlines()[0] if description else error)[:300]
    for code in codes:
        if code in _AADSTS_HINTS:
            hint = _AADSTS_HINTS[code].format(
                thumbprint=settings.certificate.thumbprint if settings.certificate else "?",
                client_id=settings.client_id, tenant=settings.tenant,
            )
            return ConfigurationError(f"{where} refused: {hint} (AADSTS{code}: {first_line})")
    if error in ("temporarily_unavailable", "server_error") or not error:
        return TransientError(f"{where} failed, a retry may succeed: {first_line or 'no answer'}")
    if error == "invalid_client":
        return ConfigurationError(f"{where} refused the {settings.credential_kind}: {first_line}")
    return ConfigurationError(f"{where} refused ({error}): {first_line}")


def _msal_app(settings: SharePointSettings) -> Any:
    import msal
    import requests

    authority = f"{settings.authority_host}/{settings.tenant}"
    credential: Any = settings.client_secret
    if settings.certificate is not None:
        credential = {"private_key": settings.certificate.private_key_pem, "thumbprint": settings.certificate.thumbprint}
    host = urlsplit(settings.authority_host).hostname or ""
    where = f"Microsoft Entra ID at {settings.authority_host} (tenant {settings.tenant})"
    try:
        return msal.ConfidentialClientApplication(
            settings.client_id, authority=authority, client_credential=credential, timeout=HTTP_TIMEOUT,
            # A sovereign-cloud or test host is not on msal's list; the tenant discovery still runs.
            instance_discovery=None if host in KNOWN_AUTHORITY_HOSTS else False,
        )
    except ValueError as exc:
        text = scrub(exc)
        if "Unable to get authority configuration" in text or "OIDC Discovery failed" in text:
            return _raise(ConfigurationError(
                f"{where}: tenant {settings.tenant} not found: check {TENANT} (the Directory (tenant) ID "
                "shown on the app registration's Overview page)"
            ))
        return _raise(ConfigurationError(f"{where}: {text[:300]}"))
    except requests.RequestException as exc:
        _network_failure(settings, exc, AUTHORITY_HOST if settings.authority_host != DEFAULT_AUTHORITY_HOST
                         else TENANT, settings.authority_host, "sign-in")
        raise AssertionError("unreachable") from None


def _raise(exc: Exception) -> Any:
    raise exc


def _network_failure(settings: SharePointSettings, exc: BaseException, variable: str, url: str, step: str) -> None:
    host = urlsplit(url).hostname
    reachability.raise_if_unresolvable(exc, REACHABILITY_KIND, settings.fingerprint, host, variable)
    raise TransientError(
        f"SharePoint {step}: network error reaching {host}, a retry may succeed: {type(exc).__name__}"
    ) from None


def _token(client: _Client) -> dict[str, Any]:
    import requests

    settings = client.settings
    scope = f"{settings.graph_endpoint}/.default"
    try:
        result = client.app.acquire_token_for_client(scopes=[scope])
    except requests.RequestException as exc:
        _network_failure(settings, exc, TENANT, settings.authority_host, "sign-in")
        raise AssertionError("unreachable") from None
    if not result or "access_token" not in result:
        raise _classify_token_failure(settings, result or {})
    register(result["access_token"])
    return result


def _client(settings: SharePointSettings) -> _Client:
    """A cached client per configuration (msal keeps the token until it nearly expires)."""
    cached = _clients.get(settings.cache_key)
    if cached is not None:
        return cached
    from office365.graph_client import GraphClient
    from office365.graph_request import GraphRequest

    for host in {urlsplit(settings.authority_host).hostname, urlsplit(settings.graph_endpoint).hostname}:
        variable = AUTHORITY_HOST if host == urlsplit(settings.authority_host).hostname else GRAPH_ENDPOINT
        reachability.check_host(REACHABILITY_KIND, settings.fingerprint, host, variable)

    class _Request(GraphRequest):
        @property
        def service_root_url(self) -> str:  # the configured cloud's Graph (the library knows only its enum)
            return f"{settings.graph_endpoint}/v1.0"

    holder: dict[str, _Client] = {}

    class _Graph(GraphClient):
        def pending_request(self) -> GraphRequest:
            if self._pending_request is None:
                self._pending_request = _Request().with_access_token(lambda: _token(holder["client"]))
            return self._pending_request  # type: ignore[return-value]

    graph = _Graph().with_transport(timeout=HTTP_TIMEOUT)
    client = _Client(settings=settings, app=_msal_app(settings), graph=graph)
    holder["client"] = client
    _clients[settings.cache_key] = client
    return client


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


def _call(client: _Client, step: str, call: Callable[[], T], on_retry: Callable[[], None] | None = None,
          not_found: Callable[[], Exception] | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run one Graph call: transient answers retried in process (Retry-After honoured), the rest classified."""
    import requests
    from office365.runtime.client_request_exception import ClientRequestException

    settings = client.settings
    where = f"SharePoint {settings.site_url}"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = call()
            reachability.mark_working(REACHABILITY_KIND, settings.fingerprint)
            return result
        except ClientRequestException as exc:
            status, code, response = _status_and_code(exc)
            if status == 404 and not_found is not None:
                raise not_found() from None
            if status not in TRANSIENT_STATUS:
                raise _graph_failure(settings, step, status, code, scrub(getattr(exc, "message", "") or exc)) from None
            wait = _retry_after(response)
            reason = f"HTTP {status}" + (f", Retry-After {wait:.0f} s" if wait is not None else "")
            if attempt == ATTEMPTS or (wait is not None and wait > MAX_RETRY_AFTER_SECONDS):
                kind = "throttled" if status == 429 else "unavailable"
                raise TransientError(
                    f"{where}: {step} {kind} ({reason}) after {attempt} attempt(s); a retry later may succeed"
                ) from None
        except requests.RequestException as exc:
            if attempt == ATTEMPTS:
                _network_failure(settings, exc, GRAPH_ENDPOINT if settings.graph_endpoint != DEFAULT_GRAPH_ENDPOINT
                                 else SITE_URL, settings.graph_endpoint, step)
            wait = None
        delay = wait if wait is not None else exponential_delay(attempt - 1, 1.0, 8.0, spread=0.25)
        if on_retry is not None:
            on_retry()
        sleep(delay)
    raise AssertionError("unreachable")


def _graph_failure(settings: SharePointSettings, step: str, status: int | None, code: str, detail: str) -> Exception:
    where = f"SharePoint {settings.site_url}"
    if status == 401:
        return ConfigurationError(
            f"{where}: Microsoft Graph rejected the app's token at {step} (HTTP 401 {code}): check that {TENANT} "
            f"is the tenant of the site and that the app registration has the Sites.Selected application "
            f"permission with admin consent: {detail[:200]}"
        )
    if status == 403:
        return ConfigurationError(
            f"{where}: app {settings.client_id} is not granted on this site (HTTP 403 {code} at {step}): with "
            "Sites.Selected an administrator must grant the app 'read' on this one site through Microsoft "
            "Graph (POST /sites/{site-id}/permissions, docs/sources.md)"
        )
    return ConfigurationError(f"{where}: {step} failed (HTTP {status} {code}): {detail[:300]}")


def _site_id(client: _Client) -> str:
    settings = client.settings
    site = _call(
        client, "site lookup", lambda: client.graph.sites.get_by_url(settings.site_url).execute_query(),
        not_found=lambda: ConfigurationError(
            f"SharePoint site '{settings.site_url}' not found (HTTP 404): check {SITE_URL} (open the site in a "
            "browser and copy its address up to the site name)"
        ),
    )
    return str(site.id)


def _library(client: _Client) -> tuple[str, str, str]:
    """(drive id, library name, path inside the library) of SHAREPOINT_BUDGET_FOLDER."""
    settings = client.settings
    cached = client.drives.get(settings.folder)
    if cached is not None:
        return cached[0], cached[1], _inside(settings, cached[1])
    site_id = _site_id(client)
    drives = _call(client, "library lookup", lambda: client.graph.sites[site_id].drives.get().execute_query())
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


@dataclass(frozen=True)
class WorkbookVersion:
    """What the budget sensor compares: the drive item's eTag (changes with every saved version)."""

    etag: str
    last_modified: str
    size: int
    item_id: str
    drive_id: str


def _workbooks_in(client: _Client, drive_id: str, folder: str) -> list[str]:
    def children() -> Any:
        root = client.graph.drives[drive_id].root
        target = root.get_by_path(folder) if folder else root
        return target.children.get().execute_query()

    try:
        items = _call(client, "folder listing", children, not_found=lambda: FileNotFoundError(folder))
    except FileNotFoundError:
        raise ConfigurationError(
            f"SharePoint site {client.settings.site_url}: folder '{client.settings.folder}' not found (HTTP 404): "
            f"check {FOLDER}"
        ) from None
    return sorted(str(i.name) for i in items if str(i.name or "").lower().endswith(WORKBOOK_SUFFIXES))


def workbook_version(settings: SharePointSettings, file_name: str) -> WorkbookVersion | None:
    """The workbook's current version (drive item metadata only, no download); None when it is absent."""
    client = _client(settings)
    drive_id, _, folder = _library(client)
    path = f"{folder}/{file_name}" if folder else file_name

    def lookup() -> Any:
        return client.graph.drives[drive_id].root.get_by_path(path).get().execute_query()

    try:
        item = _call(client, "workbook lookup", lookup, not_found=lambda: FileNotFoundError(path))
    except FileNotFoundError:
        return None
    props = item.properties
    return WorkbookVersion(
        etag=str(props.get("eTag") or props.get("cTag") or ""), last_modified=str(props.get("lastModifiedDateTime") or ""),
        size=int(props.get("size") or 0), item_id=str(props.get("id") or item.id), drive_id=drive_id,
    )


def missing_workbook(settings: SharePointSettings, file_name: str) -> MissingWorkbookError:
    """The 404 for the workbook, naming the path and listing the workbooks that are there."""
    client = _client(settings)
    drive_id, library, folder = _library(client)
    found = _workbooks_in(client, drive_id, folder)
    listing = ", ".join(f"'{name}'" for name in found) if found else "none"
    return MissingWorkbookError(
        f"SharePoint {settings.site_url}: workbook '{settings.file_path(file_name)}' not found (HTTP 404); "
        f"workbooks in '{settings.folder}': {listing}"
    )


def download(settings: SharePointSettings, file_name: str, handle: IO[bytes]) -> WorkbookVersion:
    """Stream the workbook's content into `handle` (Graph answers with a redirect to a download URL)."""
    version = workbook_version(settings, file_name)
    if version is None:
        raise missing_workbook(settings, file_name)
    client = _client(settings)

    def restart() -> None:  # a retried download starts again from byte 0
        handle.seek(0)
        handle.truncate()

    def fetch() -> Any:
        item = client.graph.drives[version.drive_id].items[version.item_id]
        return item.download_session(handle, chunk_size=CHUNK_BYTES).execute_query()

    _call(client, "download", fetch, on_retry=restart,
          not_found=lambda: TransientError(f"SharePoint: '{settings.file_path(file_name)}' vanished during the download"))
    handle.flush()
    written = handle.tell()
    if version.size and written != version.size:
        raise TransientError(
            f"SharePoint download of '{settings.file_path(file_name)}' ended early ({written} of {version.size} "
            "bytes); a retry may succeed"
        )
    return version
