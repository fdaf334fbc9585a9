"""Publish a .hyper to Tableau as a data source (Overwrite), inside the PAT's session lock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import FailedSignInError, ServerResponseError

from pipeline_common.script_support import ConfigurationError
from pipeline_common.tableau.session import PublishResult, Session, TableauSettings, signed_in, tableau_refusal

DEFAULT_LOCK_TIMEOUT_SECONDS = 1800.0


def _publish(session: Session, hyper_path: Path, name: str, project_id: str) -> TSC.DatasourceItem:
    item = TSC.DatasourceItem(project_id, name=name)
    return session.with_one_resign_in(
        "publish", lambda: session.server.datasources.publish(item, str(hyper_path), mode=TSC.Server.PublishMode.Overwrite)
    )


def publish_extract(
    hyper_path: Path, name: str, settings: TableauSettings, log: logging.Logger,
    sleep: Callable[[float], None] = time.sleep, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> PublishResult:
    """Sign in (holding the PAT's session lock), find the project, publish `name` (Overwrite), sign out."""
    with signed_in(settings, log, lock_timeout, sleep) as session:
        try:
            project_id = session.project_id()
            datasource = _publish(session, hyper_path, name, project_id)
        except (ServerResponseError, FailedSignInError) as exc:
            # 4xx answers (permissions, a locked data source, a bad name) need a person, not a retry.
            raise ConfigurationError(
                f"Tableau refused publishing {name!r} to project {settings.project!r}: {tableau_refusal(exc)}"
            ) from None
    return PublishResult(
        datasource_id=str(datasource.id), content_url=str(datasource.content_url or ""), project=settings.project
    )
