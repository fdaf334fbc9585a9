"""Sign-in: msal's client-credentials grant (a client secret, or a certificate-signed client assertion),
one cached client per configuration, and the error rules that name what to fix."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pipeline_common import reachability, tls
from pipeline_common.script_support import ConfigurationError, TransientError
from pipeline_common.secrets import register, scrub
from pipeline_common.sharepoint.certificates import CERTIFICATE_THUMBPRINT
from pipeline_common.sharepoint.settings import (
    AUTHORITY_HOST,
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_AUTHORITY_HOST,
    GRAPH_ENDPOINT,
    KNOWN_AUTHORITY_HOSTS,
    REACHABILITY_KIND,
    TENANT,
    SharePointSettings,
)

HTTP_TIMEOUT = (15, 120)  # (connect, read) seconds: a stalled server fails (and is retried), never hangs
SENSOR_HTTP_TIMEOUT = (5, 10)  # inside a sensor tick: one try per call, the next tick is the retry
ATTEMPTS = 3  # per call, in process; then exit 75 and Dagster's RetryPolicy takes over


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
class SignedInClient:
    """One signed-in GraphClient with its msal app (token cache) and the resolved site and library."""

    settings: SharePointSettings
    app: Any
    graph: Any
    drives: dict[str, tuple[str, str]] = field(default_factory=dict)  # folder -> (drive id, library name)
    attempts: int = ATTEMPTS


_clients: dict[str, SignedInClient] = {}


def _classify_token_failure(settings: SharePointSettings, result: dict[str, Any]) -> Exception:
    codes = [str(c) for c in result.get("error_codes") or []]
    description = str(result.get("error_description") or "")
    found = re.findall(r"AADSTS(\d+)", description)
    codes += found
    error = str(result.get("error") or "")
    if not re.fullmatch(r"[a-z_]{1,64}", error):  # OAuth's error is a token (invalid_client); anything else is not quoted
        error = "unrecognised error" if error else ""
    where = f"Microsoft Entra ID sign-in of app {settings.client_id} (tenant {settings.tenant}, {settings.credential_kind})"
    # Entra's error_description is free text that may quote the request (the client secret among it): only the
    # AADSTS codes in it and the OAuth error token are quoted, never the text.
    first_line = ", ".join(dict.fromkeys(f"AADSTS{code}" for code in codes if code.isdigit())) or error or ""
    for code in codes:
        if code in _AADSTS_HINTS:
            hint = _AADSTS_HINTS[code].format(
                thumbprint=settings.certificate.thumbprint if settings.certificate else "?",
                client_id=settings.client_id, tenant=settings.tenant,
            )
            return ConfigurationError(f"{where} refused: {hint} ({first_line})")
    if error in ("temporarily_unavailable", "server_error") or not error:
        return TransientError(f"{where} failed, a retry may succeed: {first_line or 'no answer'}")
    if error == "invalid_client":
        return ConfigurationError(f"{where} refused the {settings.credential_kind}: {first_line}")
    return ConfigurationError(f"{where} refused ({error}): {first_line}")


def _msal_app(settings: SharePointSettings, timeout: tuple[float, float] = HTTP_TIMEOUT) -> Any:
    import msal
    import requests

    authority = f"{settings.authority_host}/{settings.tenant}"
    credential: Any = settings.client_secret
    if settings.certificate is not None and settings.certificate.uses_sha256:
        # msal 1.39: with `public_certificate` and no `thumbprint` the assertion carries x5t#S256 and x5c
        # and is signed PS256 (Entra ID's current guidance); `thumbprint` alone is the deprecated SHA-1/RS256.
        credential = {"private_key": settings.certificate.private_key_pem,
                      "public_certificate": settings.certificate.certificate_pem}
    elif settings.certificate is not None:
        credential = {"private_key": settings.certificate.private_key_pem, "thumbprint": settings.certificate.thumbprint}
    host = urlsplit(settings.authority_host).hostname or ""
    where = f"Microsoft Entra ID at {settings.authority_host} (tenant {settings.tenant})"
    try:
        return msal.ConfidentialClientApplication(
            settings.client_id, authority=authority, client_credential=credential, timeout=timeout,
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
        network_failure(settings, exc, AUTHORITY_HOST if settings.authority_host != DEFAULT_AUTHORITY_HOST
                         else TENANT, settings.authority_host, "sign-in")
        raise AssertionError("unreachable") from None


def _raise(exc: Exception) -> Any:
    raise exc


def network_failure(settings: SharePointSettings, exc: BaseException, variable: str, url: str, step: str) -> None:
    certificate = tls.certificate_error(exc, url, variable)
    if certificate is not None:  # never transient (contract section 1)
        raise certificate from None
    host = urlsplit(url).hostname
    reachability.raise_if_unresolvable(exc, REACHABILITY_KIND, settings.fingerprint, host, variable)
    raise TransientError(
        f"SharePoint {step}: network error reaching {host}, a retry may succeed: {type(exc).__name__}"
    ) from None


def _token(client: SignedInClient) -> dict[str, Any]:
    import requests

    settings = client.settings
    scope = f"{settings.graph_endpoint}/.default"
    try:
        result = client.app.acquire_token_for_client(scopes=[scope])
    except requests.RequestException as exc:
        network_failure(settings, exc, TENANT, settings.authority_host, "sign-in")
        raise AssertionError("unreachable") from None
    if not result or "access_token" not in result:
        raise _classify_token_failure(settings, result or {})
    register(result["access_token"])
    return result


def signed_in_client(settings: SharePointSettings, timeout: tuple[float, float] = HTTP_TIMEOUT) -> SignedInClient:
    """A cached client per configuration (msal keeps the token until it nearly expires). `timeout`
    SENSOR_HTTP_TIMEOUT: short timeouts and one try per call, for a sensor tick."""
    key = f"{settings.cache_key}/{timeout}"
    cached = _clients.get(key)
    if cached is not None:
        return cached
    tls.use_os_trust_store()
    for note in settings.certificate.notes if settings.certificate else ():
        logging.getLogger("pipeline_common.sharepoint").warning(note)
    from office365.graph_client import GraphClient
    from office365.graph_request import GraphRequest

    for host in {urlsplit(settings.authority_host).hostname, urlsplit(settings.graph_endpoint).hostname}:
        variable = AUTHORITY_HOST if host == urlsplit(settings.authority_host).hostname else GRAPH_ENDPOINT
        reachability.check_host(REACHABILITY_KIND, settings.fingerprint, host, variable)

    class _Request(GraphRequest):
        @property
        def service_root_url(self) -> str:  # the configured cloud's Graph (the library knows only its enum)
            return f"{settings.graph_endpoint}/v1.0"

    holder: dict[str, SignedInClient] = {}

    class _Graph(GraphClient):
        def pending_request(self) -> GraphRequest:
            if self._pending_request is None:
                self._pending_request = _Request().with_access_token(lambda: _token(holder["client"]))
            return self._pending_request  # type: ignore[return-value]

    graph = _Graph().with_transport(timeout=timeout)
    client = SignedInClient(settings=settings, app=_msal_app(settings, timeout), graph=graph,
                            attempts=1 if timeout == SENSOR_HTTP_TIMEOUT else ATTEMPTS)
    holder["client"] = client
    _clients[key] = client
    return client


