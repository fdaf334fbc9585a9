"""The app's certificate credential: a PEM or .pfx/.p12 file, its private key and thumbprint, checked
locally before any sign-in (SHAREPOINT_CERTIFICATE_PATH, _THUMBPRINT, _PASSWORD)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_common.script_support import ConfigurationError

CERTIFICATE_PATH = "SHAREPOINT_CERTIFICATE_PATH"
CERTIFICATE_THUMBPRINT = "SHAREPOINT_CERTIFICATE_THUMBPRINT"
CERTIFICATE_PASSWORD = "SHAREPOINT_CERTIFICATE_PASSWORD"


@dataclass(frozen=True)
class Certificate:
    path: Path
    thumbprint: str  # SHA-1, upper-case hex, as the Entra admin center shows it
    private_key_pem: str = field(repr=False)
    expires: dt.datetime | None = None


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


