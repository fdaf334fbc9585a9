"""Tableau settings and one signed-in tableauserverclient session with the pipeline's rules.

Sign-in is by personal access token; 5xx answers and connection errors are retried with exponential
backoff; an expired session (401) signs in again once. Tableau allows one session per PAT, so every
sign-in holds the PAT's session lock (`session_lock`): a publish and the deadline sensor's warnings
never end each other's session. Answers that are not Tableau's (a proxy's or a single sign-on page,
TSC's NonXMLResponseError), certificate failures and 4xx refusals are configuration errors (78) that
say what to fix; only 5xx and network trouble are transient (75). The PAT secret is kept out of
every log line, including tableauserverclient's own loggers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import tableauserverclient as TSC
from tableauserverclient.server.exceptions import EndpointUnavailableError, ServerInfoEndpointNotFoundError
from tableauserverclient.server.endpoint.exceptions import (
    FailedSignInError,
    InternalServerError,
    NonXMLResponseError,
    ServerResponseError,
)

from pipeline_common import reachability, tls
from pipeline_common.backoff import exponential_delay
from pipeline_common.script_support import ConfigurationError, ScriptError, TransientError
from pipeline_common.secrets import register, scrub
from pipeline_common.settings import data_dir, env
from pipeline_common.tableau.lock import exclusive_lock

TABLEAU_ENV_VARS = (
    "TABLEAU_SERVER_URL", "TABLEAU_SITE_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "TABLEAU_PROJECT",
)
DEFAULT_SITE = "default"
"""`TABLEAU_SITE_ID=default` (any case): the Default site, whose content URL is empty (contract section 1)."""
# Chunked-upload threshold and chunk size are tableauserverclient's own settings
# (TSC_FILESIZE_LIMIT_MB, default and maximum 64; TSC_CHUNK_SIZE_MB, default 50).
RETRIES_ENV_VAR = "TABLEAU_PUBLISH_RETRIES"
RETRY_DELAY_ENV_VAR = "TABLEAU_PUBLISH_RETRY_SECONDS"
REQUEST_TIMEOUT_SECONDS = 900

# 5xx (InternalServerError) and network trouble; 4xx answers need a person, not a retry.
_TRANSIENT_ERRORS = (InternalServerError, requests.ConnectionError, requests.Timeout)
T = TypeVar("T")


@dataclass(frozen=True)
class TableauSettings:
    server_url: str
    site_id: str
    """The site's content URL as the REST API wants it: empty for the Default site."""
    pat_name: str
    project: str
    pat_secret: str = field(repr=False)
    retries: int = 4
    retry_delay_seconds: float = 5.0
    request_timeout: float = REQUEST_TIMEOUT_SECONDS

    @property
    def site_label(self) -> str:
        return repr(self.site_id) if self.site_id else "Default"

    @property
    def is_cloud(self) -> bool:
        return (urlsplit(self.server_url).hostname or "").endswith(".online.tableau.com")


@dataclass(frozen=True)
class PublishResult:
    datasource_id: str
    content_url: str
    project: str


class RedactingFilter(logging.Filter):
    """Replace a secret with *** in every record passing through a logger or handler."""

    def __init__(self, secret: str):
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret and self._secret in message:
            record.msg, record.args = message.replace(self._secret, "***"), None
        return True


def tableau_settings() -> TableauSettings | None:
    """The Tableau settings from the environment; None when none is set, an error when only some are."""
    values = {name: env(name) for name in TABLEAU_ENV_VARS}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigurationError(
            f"Tableau publishing is half configured: set {', '.join(missing)} (or unset all of "
            f"{', '.join(TABLEAU_ENV_VARS)} to skip publishing; TABLEAU_SITE_ID=default selects the Default site)"
        )
    server_url = str(values["TABLEAU_SERVER_URL"]).strip().rstrip("/")
    tls.require_https(server_url, "TABLEAU_SERVER_URL", "the personal access token")
    site = str(values["TABLEAU_SITE_ID"]).strip()
    return TableauSettings(
        server_url=server_url,
        site_id="" if site.lower() == DEFAULT_SITE else site,
        pat_name=str(values["TABLEAU_PAT_NAME"]),
        pat_secret=str(values["TABLEAU_PAT_SECRET"]),
        project=str(values["TABLEAU_PROJECT"]),
        retries=max(1, int(env(RETRIES_ENV_VAR) or 4)),
        retry_delay_seconds=float(env(RETRY_DELAY_ENV_VAR) or 5),
    )


def guard_client_logs(secret: str, *handlers: logging.Handler) -> None:
    """Quiet tableauserverclient and urllib3, and redact the secret wherever a record could go."""
    redactor = RedactingFilter(secret)
    for name in ("TSC", "tableauserverclient", "urllib3", "requests"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.addFilter(redactor)
    for handler in (*logging.getLogger().handlers, *handlers):
        handler.addFilter(redactor)


def session_lock_path(settings: TableauSettings) -> Path:
    """One lock file per personal access token (server, site, token name), under DATA_DIR."""
    key = hashlib.sha256(f"{settings.server_url}\x1f{settings.site_id}\x1f{settings.pat_name}".encode()).hexdigest()
    return data_dir() / "locks" / f"tableau-session-{key[:16]}.lock"


@contextlib.contextmanager
def session_lock(settings: TableauSettings, timeout_seconds: float, log: logging.Logger) -> Iterator[None]:
    """Hold the PAT's session lock: Tableau ends a PAT's session when the same PAT signs in again."""
    with exclusive_lock(session_lock_path(settings), timeout_seconds, log):
        yield


def _html_text(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
    text = title.group(1) if title else re.sub(r"(?s)<[^>]+>", " ", text)
    return scrub(" ".join(text.split()))[:160]


def failure(exc: BaseException, settings: TableauSettings, what: str) -> ScriptError | None:
    """The exit-code class of a Tableau error that is not transient, None for the transient ones."""
    certificate = tls.certificate_error(exc, settings.server_url, "TABLEAU_SERVER_URL")
    if certificate is not None:
        return certificate
    page = isinstance(exc, ServerResponseError) and not str(getattr(exc, "code", "") or "").strip().isdigit() \
        and "<html" in f"{getattr(exc, 'summary', '')} {getattr(exc, 'detail', '')}".lower()
    if isinstance(exc, NonXMLResponseError) or page:
        # TSC raises NonXMLResponseError for a page that is not XML, and a ServerResponseError without a
        # Tableau error code for an HTML page that happens to parse as XML: both are not Tableau answering.
        body = (exc.args[0] if exc.args else b"") if not page else f"{exc.summary} {exc.detail}"
        return ConfigurationError(
            f"Tableau {what}: {settings.server_url} answered with a page that is not Tableau's REST API "
            f"({_html_text(body) or 'no text'!r}): a proxy, a single sign-on page or another server is in the "
            "way. Check TABLEAU_SERVER_URL (the server's own address), and that the proxy (HTTPS_PROXY, NO_PROXY) "
            "lets the pipeline through without a browser sign-in"
        )
    if isinstance(exc, requests.exceptions.ProxyError) and "407" in str(exc):
        return ConfigurationError(
            f"Tableau {what}: the proxy asks for a sign-in (HTTP 407 Proxy Authentication Required): put the "
            "proxy's address with credentials in HTTPS_PROXY, or have the proxy let this machine through"
        )
    return None


class Session:
    """One signed-in TSC server with the retry and re-sign-in rules of this pipeline."""

    def __init__(self, settings: TableauSettings, log: logging.Logger, sleep: Callable[[float], None] = time.sleep):
        tls.use_os_trust_store()
        self.settings = settings
        self.log = log
        self.sleep = sleep
        self.server = TSC.Server(
            settings.server_url, use_server_version=False, http_options={"timeout": settings.request_timeout}
        )
        self.auth = TSC.PersonalAccessTokenAuth(settings.pat_name, settings.pat_secret, site_id=settings.site_id)
        self.product_version = ""

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        attempts = self.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except _TRANSIENT_ERRORS as exc:
                fatal = failure(exc, self.settings, what)
                if fatal is not None:
                    raise fatal from None
                reason = _describe(exc)
                if attempt == attempts:
                    raise TransientError(
                        f"Tableau {what} failed {attempts} times at {self.settings.server_url}: {reason}"
                    ) from None
                delay = exponential_delay(attempt - 1, self.settings.retry_delay_seconds, spread=0.25)
                self.log.warning(f"Tableau {what} failed ({reason}); retry {attempt}/{attempts - 1} in {delay:.1f} s")
                self.sleep(delay)
            except (NonXMLResponseError, ServerResponseError) as exc:
                fatal = failure(exc, self.settings, what)
                if fatal is None:
                    raise
                raise fatal from None
        raise AssertionError("unreachable")

    def sign_in(self) -> None:
        def version_and_sign_in() -> None:
            if not self.product_version:
                try:
                    info = self.server.server_info.get()
                except (ServerInfoEndpointNotFoundError, EndpointUnavailableError):  # a server before 2.4
                    self.server.use_server_version()
                    self.product_version = "unknown"
                else:
                    self.product_version = str(info.product_version or "unknown")
                    self.server.version = info.rest_api_version
            self.server.auth.sign_in(self.auth)
            register(self.server.auth_token)  # the session token is a credential too: masked wherever it shows

        try:
            self.retrying("sign-in", version_and_sign_in)
        except FailedSignInError as exc:
            raise ConfigurationError(
                f"Tableau sign-in refused at {self.settings.server_url} (site {self.settings.site_label}, "
                f"token name {self.settings.pat_name!r}): {tableau_refusal(exc)}. Check TABLEAU_PAT_NAME, "
                "TABLEAU_PAT_SECRET and TABLEAU_SITE_ID (TABLEAU_SITE_ID=default for the Default site)"
            ) from None

    def sign_out(self) -> None:
        try:
            self.server.auth.sign_out()
        except Exception as exc:  # the publish already succeeded or failed; do not mask that
            self.log.warning(f"Tableau sign-out failed: {_describe(exc)}")

    def project_id(self) -> str:
        wanted = self.settings.project
        options = TSC.RequestOptions()
        options.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name, TSC.RequestOptions.Operator.Equals, wanted))
        projects, _ = self.retrying("project lookup", lambda: self.server.projects.get(options))
        matches = [p for p in projects if p.name == wanted]
        top_level = [p for p in matches if not p.parent_id]
        if len(matches) > 1 and len(top_level) == 1:
            matches = top_level
        if not matches:
            raise ConfigurationError(
                f"Tableau project {wanted!r} not found on site {self.settings.site_label} at "
                f"{self.settings.server_url}; check TABLEAU_PROJECT"
            )
        if len(matches) > 1:
            raise ConfigurationError(f"Tableau project name {wanted!r} matches {len(matches)} projects")
        return str(matches[0].id)

    def with_one_resign_in(self, what: str, call: Callable[[], T]) -> T:
        """`call` with the retry rules; a 401 (the session ended) signs in once more and tries again."""
        try:
            return self.retrying(what, call)
        except FailedSignInError:
            self.log.warning(f"Tableau session expired during {what}; signing in again once")
            self.sign_in()
            try:
                return self.retrying(what, call)
            except FailedSignInError as exc:
                raise ConfigurationError(
                    f"Tableau refused the {what} after a fresh sign-in: {tableau_refusal(exc)}; check the token's "
                    "permissions on the project"
                ) from None


@contextlib.contextmanager
def signed_in(
    settings: TableauSettings, log: logging.Logger, lock_timeout: float, sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Session]:
    """The PAT's session lock, a sign-in, the block, a sign-out; 4xx refusals become ConfigurationError."""
    fingerprint = reachability.fingerprint(settings.server_url, settings.site_id)
    host = urlsplit(settings.server_url).hostname
    # A server name that never worked and does not resolve (a typo, a placeholder) is a configuration
    # error at once, not half an hour of retries; once it has worked, a failing lookup is an outage.
    reachability.check_host("tableau", fingerprint, host, "TABLEAU_SERVER_URL")
    with session_lock(settings, lock_timeout, log):
        session = Session(settings, log, sleep)
        session.sign_in()
        reachability.mark_working("tableau", fingerprint)
        try:
            yield session
        finally:
            session.sign_out()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ServerResponseError, NonXMLResponseError)):  # an answer's body: never quoted
        return f"{type(exc).__name__}: {tableau_refusal(exc)}"
    text = scrub(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


# Tableau's REST error codes are six digits: the HTTP status, then a number. A message says what the code
# means in the pipeline's own words; the answer's summary and detail are never quoted: a server (or a proxy
# in front of it) may echo what it was sent, the token's secret among it, in any encoding.
_TABLEAU_CODES = {
    "401001": "sign-in refused: the token name, its secret or the site is wrong, or the token expired or was revoked",
    "401002": "the session is not valid: it ended, or the same token signed in elsewhere",
}
_TABLEAU_CLASSES = {
    "400": "the request was refused as not valid: a name or value Tableau does not accept",
    "401": "the credentials or the session were refused",
    "403": "the token's user lacks the permission, or the site does not allow it",
    "404": "not found: the site, project or data source",
    "405": "not allowed on this server",
    "409": "a conflict: the item exists already or another operation holds it",
    "413": "too large for the server",
}


def tableau_refusal(exc: BaseException) -> str:
    """`403004 (the token's user lacks the permission ...)`: Tableau's error code and what it means, never the
    summary or detail of the answer."""
    code = str(getattr(exc, "code", "") or "").strip()
    if not re.fullmatch(r"\d{6}", code):
        return "an answer without a Tableau error code (its text is not quoted)"
    meaning = _TABLEAU_CODES.get(code) or _TABLEAU_CLASSES.get(code[:3]) or (
        "an error on the server" if code.startswith("5") else "refused")
    return f"{code} ({meaning})"
