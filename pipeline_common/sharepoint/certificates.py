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
    thumbprint: str
    """Upper-case hex: the certificate's SHA-256 thumbprint (what the sign-in sends as x5t#S256), or for a
    key-only file the SHA-1 thumbprint given in SHAREPOINT_CERTIFICATE_THUMBPRINT (the deprecated form)."""
    private_key_pem: str = field(repr=False)
    expires: dt.datetime | None = None
    certificate_pem: str | None = None
    notes: tuple[str, ...] = ()
    """Warnings for the operator (a SHA-1 thumbprint, a key-only file), logged by the callers."""

    @property
    def uses_sha256(self) -> bool:
        return self.certificate_pem is not None


def normalise_thumbprint(value: str) -> str:
    return re.sub(r"[\s:]", "", value).upper()


SHA1_THUMBPRINT_NOTE = (
    f"{CERTIFICATE_THUMBPRINT} holds a SHA-1 thumbprint. The sign-in now identifies the certificate by its SHA-256 "
    "thumbprint (x5t#S256, signed with PS256), as Microsoft Entra ID recommends, computed from the certificate "
    f"file; {CERTIFICATE_THUMBPRINT} is optional and only checked against the file: remove it, or set the SHA-256 "
    "thumbprint {sha256}"
)
KEY_ONLY_NOTE = (
    f"'{{path}}' holds the private key without its certificate, so the sign-in falls back to the deprecated SHA-1 "
    f"thumbprint (x5t, RS256) from {CERTIFICATE_THUMBPRINT}; put the certificate into the file (PEM: key and "
    "certificate together, or the .pfx) so the SHA-256 form is used"
)


def load_certificate(path: Path, thumbprint: str, password: str | None, now: dt.datetime | None = None) -> Certificate:
    """The private key and certificate (PEM, or a .pfx/.p12 as Windows exports it), checked locally.

    The thumbprint is optional: given as SHA-1 (40 hex digits, what older admin pages showed) it is
    checked against the file and a note says it is no longer what the sign-in sends; given as
    SHA-256 (64 hex digits) it is checked too."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    wanted = normalise_thumbprint(thumbprint or "")
    if wanted and not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", wanted):
        raise ConfigurationError(
            f"{CERTIFICATE_THUMBPRINT} must be the certificate's thumbprint, SHA-256 (64 hex digits) or SHA-1 "
            "(40), as the app registration's 'Certificates & secrets' page shows it; or leave it unset"
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
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    if certificate is None:  # a key-only PEM: only the deprecated SHA-1 form can name it
        if len(wanted) != 40:
            raise ConfigurationError(
                f"{CERTIFICATE_PATH}: '{path}' holds the private key without its certificate: put the certificate "
                "into the file (the .pfx, or the PEM key followed by the PEM certificate)"
            )
        return Certificate(path=path, thumbprint=wanted, private_key_pem=pem,
                           notes=(KEY_ONLY_NOTE.format(path=path),))
    sha1 = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - only to check a given SHA-1 value
    sha256 = certificate.fingerprint(hashes.SHA256()).hex().upper()
    actual = sha1 if len(wanted) == 40 else sha256
    if wanted and actual != wanted:
        raise ConfigurationError(
            f"{CERTIFICATE_THUMBPRINT} is {wanted} but the certificate in '{path}' has thumbprint {actual}: "
            "set the thumbprint of this certificate (and upload it to the app registration), or unset the variable"
        )
    expires = certificate.not_valid_after_utc
    if expires <= (now or dt.datetime.now(dt.timezone.utc)):
        raise ConfigurationError(
            f"the certificate in '{path}' ({sha256}) expired on {expires:%Y-%m-%d}: create a new one and "
            "upload it to the app registration"
        )
    notes = (SHA1_THUMBPRINT_NOTE.format(sha256=sha256),) if len(wanted) == 40 else ()
    return Certificate(path=path, thumbprint=sha256, private_key_pem=pem, expires=expires,
                       certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(), notes=notes)
