"""The SharePoint variable group (contract section 1): read and checked before any network call.

Azure ACS app-only sign-in for SharePoint Online was retired on 2 April 2026: a configuration that
still looks like it (no tenant, or the old ACS token URL) is a configuration error that says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from pipeline_common import reachability
from pipeline_common.script_support import ConfigurationError
from pipeline_common.secrets import register
from pipeline_common.settings import env
from pipeline_common.sharepoint.certificates import (
    CERTIFICATE_PASSWORD,
    CERTIFICATE_PATH,
    CERTIFICATE_THUMBPRINT,
    Certificate,
    load_certificate,
)

SITE_URL = "SHAREPOINT_SITE_URL"
FOLDER = "SHAREPOINT_BUDGET_FOLDER"
TENANT = "SHAREPOINT_TENANT_ID"
CLIENT_ID = "SHAREPOINT_CLIENT_ID"
CLIENT_SECRET = "SHAREPOINT_CLIENT_SECRET"
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
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


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


