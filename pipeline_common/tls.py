"""HTTPS for every client of the pipeline: the operating system's trust store, http:// only on loopback,
and an unverifiable certificate reported as a configuration error (contract section 1).

`use_os_trust_store()` makes Python's `ssl` (and so requests, urllib3, msal, tableauserverclient,
the Azure SDK and urllib) verify servers against the operating system's certificates through the
`truststore` package: Windows' certificate store on the desktop, so the CA of a corporate
TLS-inspecting proxy, deployed to Windows by group policy, is trusted without extra files. macOS
uses its keychain; Linux the OpenSSL default locations, which honour `SSL_CERT_FILE` and
`SSL_CERT_DIR`. A CA bundle given to requests (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) is still
loaded on top. Proxies come from the standard variables `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`
(requests and the Azure SDK read them; on Windows requests also reads the system proxy setting).
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from urllib.parse import urlsplit

from pipeline_common.script_support import ConfigurationError

_injected = False
_lock = threading.Lock()

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
CERTIFICATE_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLCertVerificationError")


def use_os_trust_store() -> None:
    """Verify HTTPS against the operating system's trust store in this process (idempotent)."""
    global _injected
    if _injected:
        return
    with _lock:
        if not _injected:
            import truststore

            truststore.inject_into_ssl()
            _injected = True


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_https(url: str, variable: str, what: str) -> None:
    """A secret travels to `url`: http:// is refused (78) unless the host is a loopback address."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    if parts.scheme == "http":
        raise ConfigurationError(
            f"{variable} is {parts.scheme}://{parts.hostname}: {what} would be sent in clear text. Use the "
            f"https:// address (plain http:// is accepted only for a loopback host such as 127.0.0.1)"
        )
    raise ConfigurationError(f"{variable} must be an https:// address, not {url.split('?')[0]!r}")


def _chain(exc: BaseException | None):
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # `reason` is a string on some errors (an HTTP reason phrase)
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None),
                  getattr(current, "inner_exception", None)]
        stack += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]


def certificate_failure(exc: BaseException) -> str | None:
    """The verification error's own words when `exc` (or anything behind it) is a failed certificate check."""
    for item in _chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError):
            return str(getattr(item, "verify_message", None) or item)
        text = str(item)
        if any(marker in text for marker in CERTIFICATE_MARKERS):
            start = text.find("certificate verify failed")
            return text[start:start + 120].split(")")[0] if start >= 0 else "certificate verify failed"
    return None


def certificate_error(exc: BaseException, url: str, variable: str) -> ConfigurationError | None:
    """A configuration error (78) naming the host and the fix, when `exc` is a certificate failure."""
    reason = certificate_failure(exc)
    if reason is None:
        return None
    host = urlsplit(url).hostname or url
    return ConfigurationError(
        f"the certificate of {host} ({variable}) could not be verified ({reason}). The pipeline trusts the "
        "operating system's certificate store: if a corporate proxy inspects HTTPS, have IT install its root "
        "CA in the Windows certificate store (Local Computer or Current User > Trusted Root Certification "
        "Authorities), or point REQUESTS_CA_BUNDLE at a PEM file holding it; check that the address in "
        f"{variable} is the service's own name. Not retried: this does not fix itself"
    )
