"""Tableau data quality warnings on a published extract: "this data is not current", and its removal.

When an export is late at the deadline, the pipeline puts a STALE data quality warning on its published
data source (REST API `dataQualityWarnings`, through tableauserverclient), so the team sees it on the
dashboard itself; once the export is current again the pipeline's warning is removed. Warnings someone
else put on the same data source are kept. Sign-in, retries and secret handling are the publisher's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import FailedSignInError, ServerResponseError

from create_hyper_files.tableau_publisher import TableauSettings, _Session, guard_client_logs
from pipeline_common.script_support import ConfigurationError

MARKER = "[pipeline]"
"""Every warning the pipeline writes starts with this, so it only ever removes its own."""


def _datasource(session: _Session, name: str) -> TSC.DatasourceItem | None:
    project_id = session.project_id()
    options = TSC.RequestOptions()
    options.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name, TSC.RequestOptions.Operator.Equals, name))
    found, _ = session.retrying("data source lookup", lambda: session.server.datasources.get(options))
    matches = [d for d in found if d.name == name and d.project_id == project_id]
    return matches[0] if matches else None


def _warnings(session: _Session, item: TSC.DatasourceItem) -> list[TSC.DQWItem]:
    session.server.datasources.populate_dqw(item)  # lazy: the GET happens when item.dqws is read
    return session.retrying("data quality warning lookup", lambda: list(item.dqws))


def _signed_in(settings: TableauSettings, log: logging.Logger, sleep: Callable[[float], None], work):
    guard_client_logs(settings.pat_secret)
    session = _Session(settings, log, sleep)
    session.sign_in()
    try:
        return work(session)
    except (ServerResponseError, FailedSignInError) as exc:
        raise ConfigurationError(f"Tableau refused the data quality warning: {exc.code} {exc.summary}: {exc.detail}") from None
    finally:
        session.sign_out()


def set_warning(
    settings: TableauSettings, name: str, message: str, log: logging.Logger, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Put the pipeline's STALE warning on data source `name` (replacing an older one of ours).
    Returns False when the data source is not published yet."""

    def work(session: _Session) -> bool:
        item = _datasource(session, name)
        if item is None:
            log.warning(f"Tableau data source {name!r} not found in project {settings.project!r}: no warning set")
            return False
        text = f"{MARKER} {message}"
        existing = _warnings(session, item)
        ours = [w for w in existing if (w.message or "").startswith(MARKER)]
        if any(w.message == text for w in ours):
            return True
        if ours:
            _remove_ours(session, item, existing)
        warning = TSC.DQWItem(warning_type=TSC.DQWItem.WarningType.STALE, message=text, active=True, severe=True)
        session.retrying("data quality warning", lambda: session.server.datasources.add_dqw(item, warning))
        log.info(f"Tableau data quality warning set on {name!r}: {message}")
        return True

    return _signed_in(settings, log, sleep, work)


def clear_warning(
    settings: TableauSettings, name: str, log: logging.Logger, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Remove the pipeline's warning from data source `name`; True when there was one."""

    def work(session: _Session) -> bool:
        item = _datasource(session, name)
        if item is None:
            return False
        existing = _warnings(session, item)
        if not any((w.message or "").startswith(MARKER) for w in existing):
            return False
        _remove_ours(session, item, existing)
        log.info(f"Tableau data quality warning removed from {name!r}")
        return True

    return _signed_in(settings, log, sleep, work)


def _remove_ours(session: _Session, item: TSC.DatasourceItem, existing: list[TSC.DQWItem]) -> None:
    """The REST API clears all of a data source's warnings at once: put back the ones that are not ours."""
    others = [w for w in existing if not (w.message or "").startswith(MARKER)]
    session.retrying("data quality warning removal", lambda: session.server.datasources.delete_dqw(item))
    for warning in others:
        again = TSC.DQWItem(warning_type=warning.warning_type, message=warning.message, active=warning.active,
                            severe=warning.severe)
        session.retrying("data quality warning", lambda w=again: session.server.datasources.add_dqw(item, w))
