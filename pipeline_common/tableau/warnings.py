"""The pipeline's own Tableau data quality warning on a published extract: "this data is not current".

When an export is late at the deadline, the deadline sensor puts a STALE data quality warning on its
published data source (REST API `dataQualityWarnings`), so the team sees it on the dashboard itself;
once the export is current again that warning is deleted. The rules, as the real service has them:

- Data quality warnings are a Data Management (Catalog) feature. A site without the licence (or a
  server too old for the endpoints) refuses them: that answer is detected once, recorded in
  `$DATA_DIR/state/tableau_warnings.json`, shown by `status.py` and the doctor, and the sensor stops
  asking (delete the file, or change the Tableau configuration, to ask again).
- Ours is the warning whose message starts with MARKER. It is updated in place (PUT by its id) when
  the text changes and deleted by its id: other people's warnings, and their history, are never
  touched (the by-content DELETE that TSC's `delete_dqw` sends would remove them all).
- Tableau Server 2024.2 and older (Tableau Cloud before February 2024, 2024.1) hold one warning per
  asset; newer ones one warning per type. When the rule leaves no room for ours (someone else's
  warning on the asset, or someone else's STALE warning), ours is not added and a log line says why.
- All of it in one sign-in per sensor tick, holding the PAT's session lock for a few seconds at most:
  when a publish holds it, the tick defers the warnings to the next one (a log line says so).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tableauserverclient as TSC
from tableauserverclient.server import RequestFactory
from tableauserverclient.server.endpoint.exceptions import FailedSignInError, ServerResponseError
from tableauserverclient.server.exceptions import EndpointUnavailableError

from pipeline_common import reachability
from pipeline_common.script_support import ConfigurationError, ScriptError, TransientError
from pipeline_common.secrets import scrub
from pipeline_common.settings import data_dir
from pipeline_common.tableau.session import Session, TableauSettings, guard_client_logs, signed_in, tableau_refusal

MARKER = "[pipeline]"
"""Every warning the pipeline writes starts with this, so it only ever changes its own."""
STATE_FILE = "tableau_warnings.json"
LOCK_WAIT_SECONDS = 5.0
"""How long a sensor tick waits for the PAT's session lock before deferring the warnings."""
PER_TYPE_SINCE_SERVER = (2024, 3)  # Tableau Server 2024.3: one warning per type (2024.2 and older: per asset)
PER_TYPE_SINCE_CLOUD = (2024, 1)  # Tableau Cloud February 2024 (2024.1)
# Answers that mean "this site cannot have data quality warnings": Data Management not licensed or the
# feature disabled (403, 403157 "Feature disabled"), or endpoints this server does not have (404000).
_UNAVAILABLE_CODES = {"403157", "404000", "400000"}
_UNAVAILABLE_WORDS = ("data management", "licens", "feature", "not enabled", "disabled", "not supported")


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""
    detected_at: str = ""
    server: str = ""


def _fingerprint(settings: TableauSettings) -> str:
    return reachability.fingerprint(settings.server_url, settings.site_id, settings.pat_name)


def _state_path():
    return data_dir() / "state" / STATE_FILE


def recorded_availability(settings: TableauSettings) -> Availability | None:
    """What an earlier tick found out about this site's data quality warnings (None: nothing yet)."""
    try:
        record = json.loads(_state_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != _fingerprint(settings):
        return None  # another server, site or token: find out again
    return Availability(bool(record.get("available")), str(record.get("reason", "")),
                        str(record.get("detected_at", "")), str(record.get("server", "")))


def _record(settings: TableauSettings, available: bool, reason: str, product_version: str) -> None:
    import contextlib

    from pipeline_common.files import atomic_write

    record = {
        "fingerprint": _fingerprint(settings), "available": available, "reason": scrub(reason),
        "server": f"{settings.server_url} (site {settings.site_label}, version {product_version or 'unknown'})",
        "detected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    # Best effort: a record that cannot be written only means asking again at the next tick.
    with contextlib.suppress(OSError, ScriptError), atomic_write(_state_path(), fsync=False, timeout=1.0) as temp:
        temp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def availability_text(settings: TableauSettings | None) -> str | None:
    """One line for status.py and the doctor, None when nothing is recorded."""
    if settings is None:
        return None
    found = recorded_availability(settings)
    if found is None:
        return None
    if found.available:
        return f"Tableau data quality warnings: available on {found.server}"
    return (f"Tableau data quality warnings: NOT AVAILABLE on {found.server} since {found.detected_at}: {found.reason}. "
            f"The deadline sensor no longer tries; the Slack alert still goes out. After the site gets Data "
            f"Management, delete {_state_path()} to try again")


def _version(text: str) -> tuple[int, int] | None:
    match = re.match(r"^\s*(\d{4})\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def one_per_type(settings: TableauSettings, product_version: str) -> bool:
    """True when the server holds one warning per type on an asset, False when one per asset."""
    version = _version(product_version)
    if version is None:
        return False  # unknown: the stricter rule
    return version >= (PER_TYPE_SINCE_CLOUD if settings.is_cloud else PER_TYPE_SINCE_SERVER)


def _unavailable(exc: BaseException) -> str | None:
    """The reason when `exc` says the site cannot have data quality warnings at all."""
    if isinstance(exc, EndpointUnavailableError):
        return f"the server's REST API is too old for data quality warnings ({exc})"
    if isinstance(exc, ServerResponseError):
        text = f"{exc.summary} {exc.detail}".lower()
        code = str(exc.code)
        if code in _UNAVAILABLE_CODES or (code.startswith(("403", "404", "400")) and
                                          any(word in text for word in _UNAVAILABLE_WORDS)):
            return (f"{tableau_refusal(exc)}; data quality warnings need the Data Management licence on the "
                    "site")
    return None


def _datasources(session: Session, names: list[str], project_id: str) -> dict[str, TSC.DatasourceItem]:
    found: dict[str, TSC.DatasourceItem] = {}
    for name in names:
        options = TSC.RequestOptions()
        options.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name, TSC.RequestOptions.Operator.Equals, name))
        items, _ = session.retrying("data source lookup", lambda o=options: session.server.datasources.get(o))
        matches = [d for d in items if d.name == name and d.project_id == project_id]
        if matches:
            found[name] = matches[0]
    return found


def _warnings(session: Session, item: TSC.DatasourceItem) -> list[TSC.DQWItem]:
    session.server.datasources.populate_dqw(item)  # lazy: the GET happens when item.dqws is read
    return session.with_one_resign_in("data quality warning lookup", lambda: list(item.dqws))


def _by_id_url(session: Session, warning: TSC.DQWItem) -> str:
    # Update and delete of one warning address the warning itself (REST API: PUT / DELETE
    # sites/{site}/dataQualityWarnings/{dqw-id}); TSC 0.42 only has the by-content forms.
    return f"{session.server.baseurl}/sites/{session.server.site_id}/dataQualityWarnings/{warning.id}"


def _update(session: Session, warning: TSC.DQWItem, text: str) -> None:
    endpoint = session.server.datasources._data_quality_warnings
    changed = TSC.DQWItem(warning_type=TSC.DQWItem.WarningType.STALE, message=text, active=True, severe=True)
    body = RequestFactory.DQW.update_req(changed)
    session.with_one_resign_in("data quality warning update", lambda: endpoint.put_request(_by_id_url(session, warning), body))


def _delete(session: Session, warning: TSC.DQWItem) -> None:
    endpoint = session.server.datasources._data_quality_warnings
    session.with_one_resign_in("data quality warning removal", lambda: endpoint.delete_request(_by_id_url(session, warning)))


def _ours(warning: TSC.DQWItem) -> bool:
    return (warning.message or "").startswith(MARKER)


def _apply(session: Session, item: TSC.DatasourceItem, text: str | None, log: logging.Logger) -> bool | None:
    """Make `item` carry our warning `text` (None: carry none of ours). Returns what is now set:
    True ours is there, False none of ours, None ours could not be added (the rule left no room)."""
    existing = _warnings(session, item)
    ours = [w for w in existing if _ours(w)]
    others = [w for w in existing if not _ours(w)]
    if text is None:
        for warning in ours:
            _delete(session, warning)
        return False
    wanted = f"{MARKER} {text}"
    if ours:
        if ours[0].message != wanted or not ours[0].active:
            _update(session, ours[0], wanted)
        for extra in ours[1:]:  # never more than one of ours
            _delete(session, extra)
        return True
    per_type = one_per_type(session.settings, session.product_version)
    blocking = [w for w in others if not per_type or str(w.warning_type).upper() == "STALE"]
    if blocking:
        rule = "one warning per type" if per_type else "one warning per data source"
        log.warning(
            f"Tableau data quality warning not set on {item.name!r}: the server ({session.product_version or 'version unknown'}) "
            f"holds {rule} and someone else's {blocking[0].warning_type} warning is there; it is left as it is"
        )
        return None
    warning = TSC.DQWItem(warning_type=TSC.DQWItem.WarningType.STALE, message=wanted, active=True, severe=True)
    session.with_one_resign_in("data quality warning", lambda: session.server.datasources.add_dqw(item, warning))
    return True


def sync_warnings(
    settings: TableauSettings, wanted: Mapping[str, str | None], log: logging.Logger,
    sleep: Callable[[float], None] = time.sleep, lock_wait: float = LOCK_WAIT_SECONDS,
) -> dict[str, bool | None]:
    """Bring the pipeline's warnings on these data sources (name -> text, None for "no warning of ours")
    in line, in one sign-in. Returns name -> True (ours set), False (none of ours), None (not possible:
    not published yet, or no room by the server's rule). Raises TransientError when the PAT's session is
    busy (defer to the next tick) and ConfigurationError for refusals."""
    recorded = recorded_availability(settings)
    if recorded is not None and not recorded.available:
        return {name: None for name in wanted}
    guard_client_logs(settings.pat_secret)
    result: dict[str, bool | None] = {}
    with signed_in(settings, log, lock_wait, sleep) as session:
        try:
            project_id = session.project_id()
            items = _datasources(session, list(wanted), project_id)
            for name, text in wanted.items():
                item = items.get(name)
                if item is None:
                    if text is not None:
                        log.warning(f"Tableau data source {name!r} not found in project {settings.project!r}: "
                                    "no warning set")
                    result[name] = None
                    continue
                result[name] = _apply(session, item, text, log)
        except (ServerResponseError, EndpointUnavailableError) as exc:
            reason = _unavailable(exc)
            if reason is not None:
                _record(settings, False, reason, session.product_version)
                log.warning(f"Tableau data quality warnings are not available on {settings.server_url}: {reason}; "
                            "recorded, not asked again")
                return {name: None for name in wanted}
            raise _refused(exc) from None
        except FailedSignInError as exc:
            raise _refused(exc) from None
        if recorded is None and items:
            _record(settings, True, "", session.product_version)
    return result


def _refused(exc: BaseException) -> ScriptError:
    return ConfigurationError(scrub(f"Tableau refused the data quality warning: {tableau_refusal(exc)}"))


def set_warning(settings: TableauSettings, name: str, message: str, log: logging.Logger,
                sleep: Callable[[float], None] = time.sleep) -> bool:
    """Put the pipeline's STALE warning on data source `name`; False when it could not be set."""
    return bool(sync_warnings(settings, {name: message}, log, sleep).get(name))


def clear_warning(settings: TableauSettings, name: str, log: logging.Logger,
                  sleep: Callable[[float], None] = time.sleep) -> bool:
    """Remove the pipeline's warning from data source `name`."""
    return sync_warnings(settings, {name: None}, log, sleep).get(name) is False


__all__ = ["MARKER", "Availability", "TransientError", "availability_text", "clear_warning", "one_per_type",
           "recorded_availability", "set_warning", "sync_warnings"]
