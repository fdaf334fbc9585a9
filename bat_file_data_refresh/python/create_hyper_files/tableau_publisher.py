"""Publish a .hyper to Tableau Server as a data source (Overwrite) with tableauserverclient.

Sign-in is by personal access token; 5xx answers and connection errors are retried with
exponential backoff; an expired session (401) signs in again once. The PAT secret is kept
out of every log line, including tableauserverclient's own loggers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import (
    FailedSignInError,
    InternalServerError,
    ServerResponseError,
)

from pipeline_common import reachability
from pipeline_common.backoff import exponential_delay
from pipeline_common.script_support import ConfigurationError, TransientError
from pipeline_common.settings import env

TABLEAU_ENV_VARS = (
    "TABLEAU_SERVER_URL", "TABLEAU_SITE_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "TABLEAU_PROJECT",
)
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
    pat_name: str
    project: str
    pat_secret: str = field(repr=False)
    retries: int = 4
    retry_delay_seconds: float = 5.0


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
            f"{', '.join(TABLEAU_ENV_VARS)} to skip publishing)"
        )
    return TableauSettings(
        server_url=str(values["TABLEAU_SERVER_URL"]).rstrip("/"),
        site_id=str(values["TABLEAU_SITE_ID"]),
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


class _Session:
    """One signed-in TSC server with the retry and re-sign-in rules of this pipeline."""

    def __init__(self, settings: TableauSettings, log: logging.Logger, sleep: Callable[[float], None]):
        self.settings = settings
        self.log = log
        self.sleep = sleep
        self.server = TSC.Server(
            settings.server_url, use_server_version=True, http_options={"timeout": REQUEST_TIMEOUT_SECONDS}
        )
        self.auth = TSC.PersonalAccessTokenAuth(settings.pat_name, settings.pat_secret, site_id=settings.site_id)

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        attempts = self.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except _TRANSIENT_ERRORS as exc:
                reason = _describe(exc)
                if attempt == attempts:
                    raise TransientError(
                        f"Tableau {what} failed {attempts} times at {self.settings.server_url}: {reason}"
                    ) from None
                delay = exponential_delay(attempt - 1, self.settings.retry_delay_seconds, spread=0.25)
                self.log.warning(f"Tableau {what} failed ({reason}); retry {attempt}/{attempts - 1} in {delay:.1f} s")
                self.sleep(delay)
        raise AssertionError("unreachable")

    def sign_in(self) -> None:
        try:
            self.retrying("sign-in", lambda: self.server.auth.sign_in(self.auth))
        except FailedSignInError as exc:
            raise ConfigurationError(
                f"Tableau sign-in refused at {self.settings.server_url} (site {self.settings.site_id!r}, "
                f"token name {self.settings.pat_name!r}): {exc.summary}. Check TABLEAU_PAT_NAME, "
                "TABLEAU_PAT_SECRET and TABLEAU_SITE_ID"
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
                f"Tableau project {wanted!r} not found on site {self.settings.site_id!r} at "
                f"{self.settings.server_url}; check TABLEAU_PROJECT"
            )
        if len(matches) > 1:
            raise ConfigurationError(f"Tableau project name {wanted!r} matches {len(matches)} projects")
        return str(matches[0].id)

    def publish(self, hyper_path: Path, name: str, project_id: str) -> TSC.DatasourceItem:
        item = TSC.DatasourceItem(project_id, name=name)

        def once() -> TSC.DatasourceItem:
            return self.server.datasources.publish(item, str(hyper_path), mode=TSC.Server.PublishMode.Overwrite)

        try:
            return self.retrying("publish", once)
        except FailedSignInError:
            # PAT sessions expire (or are revoked when the same PAT signs in elsewhere): one fresh sign-in.
            self.log.warning("Tableau session expired during publish; signing in again once")
            self.sign_in()
            try:
                return self.retrying("publish", once)
            except FailedSignInError as exc:
                raise ConfigurationError(
                    f"Tableau refused the publish after a fresh sign-in: {exc.summary}; check the token's "
                    "permissions on the project"
                ) from None


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def publish_extract(
    hyper_path: Path, name: str, settings: TableauSettings, log: logging.Logger,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Sign in, find the project, publish hyper_path as data source `name` (Overwrite), sign out."""
    # A server name that never worked and does not resolve (a typo, a placeholder) is a configuration
    # error at once, not half an hour of retries; once it has worked, a failing lookup is an outage.
    fingerprint = reachability.fingerprint(settings.server_url, settings.site_id)
    host = urlsplit(settings.server_url).hostname
    reachability.check_host("tableau", fingerprint, host, "TABLEAU_SERVER_URL")
    session = _Session(settings, log, sleep)
    session.sign_in()
    reachability.mark_working("tableau", fingerprint)
    try:
        project_id = session.project_id()
        datasource = session.publish(hyper_path, name, project_id)
    except (ServerResponseError, FailedSignInError) as exc:
        # 4xx answers (permissions, a locked data source, a bad name) need a person, not a retry.
        raise ConfigurationError(
            f"Tableau refused publishing {name!r} to project {settings.project!r}: "
            f"{exc.code} {exc.summary}: {exc.detail}"
        ) from None
    finally:
        session.sign_out()
    return PublishResult(
        datasource_id=str(datasource.id), content_url=str(datasource.content_url or ""), project=settings.project
    )
