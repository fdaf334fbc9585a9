"""Keep secrets out of everything the pipeline writes: messages, logs, run metadata, alert files.

Two nets, both applied by `scrub()`: the values themselves (every secret variable of contract
section 1, the parts of a connection string or SAS token, and values registered at run time such
as access tokens) in each encoding they travel in (raw, URL-encoded, JSON-escaped), and patterns
that are secret whatever their value (`sig=`, `AccountKey=`, `client_secret=`, bearer tokens,
JWTs, Slack webhook paths), so a secret the process never saw (an echoed form, a token in a
download URL) is caught too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

MASK = "***"

SECRET_ENV_VARS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "SHAREPOINT_CLIENT_SECRET",
    "SHAREPOINT_CERTIFICATE_PASSWORD",
    "TABLEAU_PAT_SECRET",
)
SECRET_ENV_PREFIXES = ("SLACK_WEBHOOK_",)
# Shorter values are not treated as secrets by value (they would mask ordinary words);
# the patterns below still catch them where they stand as a parameter.
_MIN_SECRET_LENGTH = 6

_PATTERNS = [
    # query-string / form parameters whose value is a secret (SAS signature, OAuth forms, download tokens)
    re.compile(
        r"(?i)\b((?:sig|client_secret|client_assertion|assertion|access_token|refresh_token|tempauth|"
        r"password|passphrase|AccountKey|SharedAccessSignature)(?:=|%3D))[^&;\s\"'<>]+"
    ),
    # JSON fields holding a secret
    re.compile(r"(?i)(\"(?:access_token|refresh_token|client_secret|id_token|password)\"\s*:\s*\")[^\"]*"),
    re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9\-_.~+/=]{8,}"),
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # a JWT anywhere
    re.compile(r"(?i)(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"),
    re.compile(r"(?i)(\bBasic\s+)[A-Za-z0-9+/=]{8,}"),  # HTTP basic credentials, base64 of user:password
    # XML/JSON credential fields (Tableau's signin body: personalAccessTokenSecret="...")
    re.compile(r"(?i)(personalAccessTokenSecret\s*=\s*(?:\"|&quot;|&#34;|'|&apos;|&#39;))[^\"'&<>\s]+"),
]

_registered: set[str] = set()


def register(*values: str | None) -> None:
    """Treat these values (e.g. an access token just obtained) as secrets for the rest of the process."""
    for value in values:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            _registered.add(value)


def _parts(value: str) -> Iterable[str]:
    """A secret and the secret parts inside it (connection string keys, SAS parameters)."""
    yield value
    for item in value.split(";"):
        key, _, part = item.partition("=")
        if part and key.strip().lower() in ("accountkey", "sharedaccesssignature", "sig"):
            yield part
            yield from _parts(part)
    if "sig=" in value:
        for key, part in parse_qsl(value.removeprefix("?")):  # a blank `sig=` holds nothing to mask
            if key == "sig":
                yield part
                yield quote(part, safe="")


_XML_ESCAPES = [
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"},
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"},  # html.escape
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"},  # Go, Java, .NET servers
    {"&": "&amp;", "<": "&lt;", ">": "&gt;"},  # element text: quotes left as they are
]


def _xml_forms(value: str) -> set[str]:
    """The value as an XML/HTML document quotes it (a server echoing a credential in an error body)."""
    return {"".join(table.get(ch, ch) for ch in value) for table in _XML_ESCAPES}


def _base64_forms(value: str) -> set[str]:
    """The value's base64 (standard and URL-safe) at each of the three alignments it can have inside a
    longer encoded text (`user:secret` in a Basic header, a token in a JSON blob): the characters that
    depend only on the secret's own bytes, so they show wherever it stands."""
    import base64

    raw = value.encode()
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = -(-8 * shift // 6)  # the first character past the padding bits
        core = encoded[start: (8 * (shift + len(raw))) // 6]  # a 6-byte secret off a 3-byte boundary: 7 characters
        forms |= {core, core.translate(str.maketrans("+/", "-_"))}  # _encodings drops forms under 6 characters
    return forms


def _encodings(value: str) -> set[str]:
    forms = {value, unquote(value), quote_plus(value), quote(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {quote(form, safe="") for form in list(forms)}  # every character encoded; encoded twice (a URL in a form)
    for form in list(forms):
        forms |= _xml_forms(form)
    forms |= _base64_forms(value)
    return {form for form in forms if len(form) >= _MIN_SECRET_LENGTH}


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret known now, in every encoding, longest first (so no partial mask is left)."""
    environ = os.environ if environ is None else environ
    raw = [environ[name] for name in SECRET_ENV_VARS if name in environ]
    raw += [v for k, v in environ.items() if k.startswith(SECRET_ENV_PREFIXES)]
    raw += list(_registered)
    forms: set[str] = set()
    for value in raw:
        value = value.strip()
        if len(value) < _MIN_SECRET_LENGTH:
            continue
        for part in _parts(value):
            forms |= _encodings(part)
    return sorted(forms, key=len, reverse=True)


def scrub(text: Any, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret masked."""
    text = str(text)
    for value in secret_values(environ):
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def scrub_data(value: Any) -> Any:
    """Strings masked inside dicts, lists and tuples (run metadata, JSON summaries)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {key: scrub_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_data(item) for item in value)
    return value


class ScrubbingFilter(logging.Filter):
    """Masks secrets in every record passing a logger or handler (message and arguments rendered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = scrub(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_excepthook() -> None:
    """An uncaught exception's traceback is printed scrubbed (its text may quote a secret)."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))  # the type and traceback: exc's own
        sys.stderr.flush()

    sys.excepthook = hook
