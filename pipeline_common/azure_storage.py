"""How the pipeline signs in to Azure Blob Storage, shared by the sync script and the arrival sensors.

Three ways, chosen from the environment (contract section 1), checked before any network call:
- `AZURE_STORAGE_CONNECTION_STRING` (account key or SAS inside it; Azurite's development string);
- `AZURE_STORAGE_ACCOUNT_URL` + `AZURE_STORAGE_SAS_TOKEN` (a container or account SAS, read + list);
- `AZURE_STORAGE_ACCOUNT_URL` alone: a Microsoft Entra ID identity through azure-identity, the
  service principal of `AZURE_TENANT_ID` / `AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET` (or
  `AZURE_CLIENT_CERTIFICATE_PATH`) when set, else `DefaultAzureCredential` (managed identity,
  Azure CLI sign-in, ...). The identity needs the `Storage Blob Data Reader` role.
Failures are translated into the script exit-code classes with a message naming the likely cause,
never the secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pipeline_common import reachability
from pipeline_common.script_support import ConfigurationError, TransientError
from pipeline_common.secrets import register
from pipeline_common.settings import azure_container, env

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
SAS_TOKEN = "AZURE_STORAGE_SAS_TOKEN"
# azure-identity's own EnvironmentCredential variables (a service principal).
IDENTITY_TENANT = "AZURE_TENANT_ID"
IDENTITY_CLIENT = "AZURE_CLIENT_ID"
IDENTITY_SECRET = "AZURE_CLIENT_SECRET"
IDENTITY_CERTIFICATE = "AZURE_CLIENT_CERTIFICATE_PATH"

MODE_CONNECTION_STRING = "connection string"
MODE_SAS = "SAS token"
MODE_ENTRA = "Microsoft Entra ID"

# HTTP statuses where waiting and retrying can help (after the SDK's own retries gave up).
TRANSIENT_HTTP_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
REACHABILITY_KIND = "azure_storage"


@dataclass(frozen=True)
class AzureStorageSettings:
    mode: str
    container: str
    account_url: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    service_principal: bool = False  # Entra ID: AZURE_TENANT_ID/CLIENT_ID/secret or certificate set

    @property
    def host(self) -> str | None:
        url = self.account_url or _connection_string_url(self.connection_string or "")
        return urlsplit(url).hostname if url else None

    @property
    def fingerprint(self) -> str:
        return reachability.fingerprint(self.mode, self.host or "", self.container)

    def sas_expiry(self) -> dt.datetime | None:
        """The SAS token's `se=` (signed expiry), when it has one."""
        token = self.sas_token or _connection_string_sas(self.connection_string or "")
        if not token:
            return None
        values = parse_qs(token.lstrip("?")).get("se")
        if not values:
            return None
        try:
            expiry = dt.datetime.fromisoformat(values[0].replace("Z", "+00:00"))
        except ValueError:
            return None
        return expiry if expiry.tzinfo else expiry.replace(tzinfo=dt.timezone.utc)


def _connection_string_parts(connection_string: str) -> dict[str, str]:
    parts = {}
    for item in connection_string.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def _connection_string_url(connection_string: str) -> str | None:
    parts = _connection_string_parts(connection_string)
    if "blobendpoint" in parts:
        return parts["blobendpoint"]
    if "accountname" in parts:
        suffix = parts.get("endpointsuffix", "core.windows.net")
        return f"{parts.get('defaultendpointsprotocol', 'https')}://{parts['accountname']}.blob.{suffix}"
    return None


def _connection_string_sas(connection_string: str) -> str | None:
    return _connection_string_parts(connection_string).get("sharedaccesssignature")


def azure_storage_settings(now: dt.datetime | None = None) -> AzureStorageSettings | None:
    """The configured Azure source, None for the local landing folder; a half-set group is an error (78)."""
    connection_string = env(CONNECTION_STRING)
    account_url = env(ACCOUNT_URL)
    sas_token = env(SAS_TOKEN)
    identity = {name: env(name) for name in (IDENTITY_TENANT, IDENTITY_CLIENT, IDENTITY_SECRET, IDENTITY_CERTIFICATE)}
    container = azure_container()
    if connection_string:
        if account_url or sas_token:
            extra = ", ".join(n for n, v in ((ACCOUNT_URL, account_url), (SAS_TOKEN, sas_token)) if v)
            raise ConfigurationError(
                f"Azure Blob is configured twice: {CONNECTION_STRING} and {extra}; keep one way of signing in"
            )
        register(connection_string)
        settings = AzureStorageSettings(MODE_CONNECTION_STRING, container, connection_string=connection_string.strip())
        if settings.host is None:
            raise ConfigurationError(f"{CONNECTION_STRING} is not a valid Azure Storage connection string")
        return _checked(settings, now)
    if sas_token and not account_url:
        raise ConfigurationError(
            f"{SAS_TOKEN} is set but {ACCOUNT_URL} is not: set {ACCOUNT_URL} "
            "(e.g. https://<account>.blob.core.windows.net)"
        )
    service_principal_vars = (identity[IDENTITY_TENANT], identity[IDENTITY_SECRET], identity[IDENTITY_CERTIFICATE])
    if not account_url:
        if any(service_principal_vars):
            set_names = [n for n in (IDENTITY_TENANT, IDENTITY_SECRET, IDENTITY_CERTIFICATE) if identity[n]]
            raise ConfigurationError(
                f"{', '.join(set_names)} set for an Entra ID sign-in to Azure Blob, but {ACCOUNT_URL} is not: "
                f"set {ACCOUNT_URL} (e.g. https://<account>.blob.core.windows.net), or unset them"
            )
        return None
    account_url, url_sas = _split_url(account_url)
    if url_sas and sas_token:
        raise ConfigurationError(f"{ACCOUNT_URL} carries a SAS query and {SAS_TOKEN} is set too; keep one")
    sas_token = (sas_token or url_sas or "").strip().lstrip("?") or None
    if sas_token:
        register(sas_token)
        return _checked(AzureStorageSettings(MODE_SAS, container, account_url=account_url, sas_token=sas_token), now)
    service_principal = any(service_principal_vars)
    if service_principal:
        missing = [n for n in (IDENTITY_TENANT, IDENTITY_CLIENT) if not identity[n]]
        if not (identity[IDENTITY_SECRET] or identity[IDENTITY_CERTIFICATE]):
            missing.append(f"{IDENTITY_SECRET} (or {IDENTITY_CERTIFICATE})")
        if missing:
            raise ConfigurationError(
                f"the Entra ID service principal for Azure Blob is half configured: set {', '.join(missing)}"
            )
    settings = AzureStorageSettings(MODE_ENTRA, container, account_url=account_url, service_principal=service_principal)
    return _checked(settings, now)


def _split_url(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"{ACCOUNT_URL} must be the account's blob endpoint, e.g. https://<account>.blob.core.windows.net"
        )
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, (parts.query or None)


def _checked(settings: AzureStorageSettings, now: dt.datetime | None) -> AzureStorageSettings:
    expiry = settings.sas_expiry()
    now = now or dt.datetime.now(dt.timezone.utc)
    if expiry is not None and expiry <= now:
        where = SAS_TOKEN if settings.mode == MODE_SAS else CONNECTION_STRING
        raise ConfigurationError(
            f"the SAS token in {where} expired at {expiry:%Y-%m-%d %H:%M} UTC (its se= expiry): "
            "ask for a new SAS with read and list permission on the container"
        )
    return settings


def credential_for(settings: AzureStorageSettings) -> Any:
    """What azure-storage-blob is given: the SAS string, or an azure-identity credential (Entra ID)."""
    if settings.mode == MODE_SAS:
        return settings.sas_token
    if settings.mode != MODE_ENTRA:
        return None
    from azure.identity import DefaultAzureCredential, EnvironmentCredential

    # azure-identity reads its variables from os.environ itself and takes an empty value (as a copied
    # .env.example leaves them) for a set one; empty means unset here, as everywhere in the pipeline.
    for name in [n for n, v in os.environ.items() if n.startswith("AZURE_") and not v.strip()]:
        del os.environ[name]

    if settings.service_principal:
        return EnvironmentCredential()
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def blob_service_client(settings: AzureStorageSettings, **client_options: Any) -> Any:
    """A BlobServiceClient for the settings; a never-working host that does not resolve is a config error."""
    from azure.storage.blob import BlobServiceClient

    reachability.check_host(
        REACHABILITY_KIND, settings.fingerprint, settings.host,
        ACCOUNT_URL if settings.account_url else CONNECTION_STRING,
    )
    if settings.mode == MODE_CONNECTION_STRING:
        try:
            return BlobServiceClient.from_connection_string(settings.connection_string or "", **client_options)
        except ValueError:
            # The SDK's message may quote the connection string; it is a secret, so say it in our words.
            raise ConfigurationError(f"{CONNECTION_STRING} is not a valid Azure Storage connection string") from None
    return BlobServiceClient(settings.account_url or "", credential=credential_for(settings), **client_options)


def describe(settings: AzureStorageSettings) -> str:
    return f"Azure container '{settings.container}' ({settings.mode})"


def _cause_of_refusal(settings: AzureStorageSettings, error_code: str) -> str:
    """The likely reasons Azure refused, for the way this configuration signs in."""
    if error_code == "KeyBasedAuthenticationNotPermitted":
        return (
            "shared-key access is disabled on the storage account: use a SAS token "
            f"({ACCOUNT_URL} + {SAS_TOKEN}) or an Entra ID identity instead of the account key"
        )
    if settings.mode == MODE_CONNECTION_STRING:
        return (
            f"the account key or SAS in {CONNECTION_STRING} is wrong, rotated or expired, or shared-key "
            "access is disabled on the account"
        )
    if settings.mode == MODE_SAS:
        expiry = settings.sas_expiry()
        when = f" (se= {expiry:%Y-%m-%d %H:%M} UTC)" if expiry else ""
        return (
            f"the SAS token in {SAS_TOKEN} has expired or is not yet valid{when}, lacks read and list "
            "permission (sp=rl) on the container, was signed for another account or container, or "
            "excludes this IP address"
        )
    return (
        "the Entra ID identity lacks the 'Storage Blob Data Reader' RBAC role on the account or "
        "container (role assignments take a few minutes to apply), or the account's network rules block it"
    )


@contextlib.contextmanager
def azure_errors(action: str, settings: AzureStorageSettings) -> Iterator[None]:
    """Turn Azure SDK errors into the script's exit-code classes (75 retryable, 78 fix the config)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ResourceModifiedError:
        raise TransientError(f"{action}: the blob changed while it was being read; a retry picks up the new version") from None
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", None) == "ContainerNotFound":
            raise ConfigurationError(f"{action}: the container does not exist (check AZURE_CONTAINER)") from None
        raise TransientError(f"{action}: the blob disappeared while it was being read") from None
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        code = str(getattr(exc, "error_code", "") or "")
        if status is None:  # no HTTP answer: azure-identity could not get a token
            raise ConfigurationError(
                f"{action}: no Microsoft Entra ID token for the storage account: "
                f"{_identity_hint(settings)}"
            ) from None
        raise ConfigurationError(
            f"{action}: Azure refused the request (HTTP {status}{', ' + code if code else ''}): "
            f"{_cause_of_refusal(settings, code)}"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        reachability.raise_if_unresolvable(
            exc, REACHABILITY_KIND, settings.fingerprint, settings.host,
            ACCOUNT_URL if settings.account_url else CONNECTION_STRING,
        )
        raise TransientError(f"{action}: network error after retries: {type(exc).__name__}") from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        code = str(getattr(exc, "error_code", "") or "")
        if status in (401, 403):
            raise ConfigurationError(
                f"{action}: Azure refused the request (HTTP {status}{', ' + code if code else ''}): "
                f"{_cause_of_refusal(settings, code)}"
            ) from None
        if status in TRANSIENT_HTTP_STATUSES or status >= 500:
            raise TransientError(f"{action}: Azure answered HTTP {status} after retries") from None
        raise ConfigurationError(f"{action}: Azure answered HTTP {status} ({code})") from None
    else:
        reachability.mark_working(REACHABILITY_KIND, settings.fingerprint)


def _identity_hint(settings: AzureStorageSettings) -> str:
    if settings.service_principal:
        return (
            f"check {IDENTITY_TENANT}, {IDENTITY_CLIENT} and {IDENTITY_SECRET} (or {IDENTITY_CERTIFICATE}): "
            "the tenant, the app registration and its secret or certificate"
        )
    return (
        "DefaultAzureCredential found no usable identity (no managed identity, no Azure CLI sign-in); "
        f"set {IDENTITY_TENANT}, {IDENTITY_CLIENT} and {IDENTITY_SECRET} for a service principal, or use a SAS token"
    )
