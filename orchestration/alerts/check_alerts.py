"""Alerts for failed asset checks (dbt tests, sentinels, ingestion checks), read from the event log.

A sensor follows finished runs through the event log's run-status records (cursor: their
storage ids, which are global even on the default run-sharded SQLite storage) and reads each
run's ASSET_CHECK_EVALUATION events. A failed check of severity ERROR goes to its route (a
sentinel's own route, else `alerts.check_route`); WARN goes to the log, and to Slack only for
routes listed in `alerts.warn_routes`.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType

from orchestration.alerts import blocks
from orchestration.alerts.run_alerts import ui_base_url
from orchestration.alerts.slack import SlackAlerts, scrubbed
from pipeline_common.config import Alerts

BATCH = 25
FIELD_VALUE_CHARS = 300
FINISHED_EVENTS = [DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED]


def _status_records(instance: dg.DagsterInstance, event_type: DagsterEventType, after: int | None, limit: int):
    records_filter = dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after)
    return instance.fetch_run_status_changes(records_filter, limit=limit, ascending=after is not None).records


def initial_cursor(instance: dg.DagsterInstance) -> dict[str, int]:
    cursor = {}
    for event_type in FINISHED_EVENTS:
        newest = _status_records(instance, event_type, None, 1)
        cursor[event_type.value] = newest[0].storage_id if newest else 0
    return cursor


def finished_runs_since(instance: dg.DagsterInstance, cursor: dict[str, int]) -> list[tuple[str, int, str]]:
    """(event type, storage id, run id) of runs finished after the cursor, oldest first."""
    found = []
    for event_type in FINISHED_EVENTS:
        for record in _status_records(instance, event_type, cursor.get(event_type.value, 0), BATCH):
            found.append((event_type.value, record.storage_id, record.event_log_entry.run_id))
    return sorted(found, key=lambda item: item[1])


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    entries = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [entry.dagster_event.asset_check_evaluation_data for entry in entries]
    return [e for e in evaluations if not e.passed]


def metadata_text(value: Any) -> str:
    raw = getattr(value, "value", value)
    if isinstance(raw, (dict, list)):
        return json.dumps(raw, default=str)
    return str(raw)


def check_message(evaluation: Any, run_id: str, base_url: str) -> tuple[str, dict]:
    asset = evaluation.asset_key.to_user_string()
    severity = evaluation.severity.value
    title = f"Check failed: {asset} / {evaluation.check_name}"
    json_rows = {k: v for k, v in evaluation.metadata.items() if isinstance(getattr(v, "value", None), (list, dict))}
    scalars = {k: v for k, v in evaluation.metadata.items() if k not in json_rows}
    fields = {"Asset": f"`{blocks.escape(asset)}`", "Check": f"`{blocks.escape(evaluation.check_name)}`"}
    for key, value in list(scalars.items())[: blocks.MAX_FIELDS - len(fields)]:
        fields[key] = blocks.clip_raw(metadata_text(value), FIELD_VALUE_CHARS)
    details = "\n".join(f"{k}: {metadata_text(v)}" for k, v in json_rows.items()) or None
    summary = blocks.escape(evaluation.description or "") + (
        ("\n" if evaluation.description else "") + blocks.link(f"{base_url}/runs/{run_id}", "Open the run")
    )
    return title, blocks.message(title, severity, summary=summary, fields=fields, details=details)


def route_for(alerts: Alerts, check_name: str) -> str:
    for sentinel in alerts.sentinels:
        if sentinel.name == check_name:
            return sentinel.route
    return alerts.check_route


def build_check_alert_sensor(alerts: Alerts, default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name="asset_check_alert_sensor",
        default_status=default_status,
        minimum_interval_seconds=30,
        description="Slack alert for each failed asset check of severity ERROR (WARN: log only by default).",
    )
    def asset_check_alert_sensor(context: dg.SensorEvaluationContext, slack_alerts: SlackAlerts):
        if context.cursor is None:
            # A fresh install should not replay every check that ever failed.
            context.update_cursor(json.dumps(initial_cursor(context.instance)))
            return dg.SkipReason("cursor initialised at the newest finished run")
        cursor = json.loads(context.cursor)
        finished = finished_runs_since(context.instance, cursor)
        sent = 0
        for event_type, storage_id, run_id in finished:
            for evaluation in failed_checks(context.instance, run_id):
                sent += _alert(context, slack_alerts, alerts, evaluation, run_id)
            cursor[event_type] = storage_id
            context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"{len(finished)} finished run(s) read, {sent} check alert(s) sent")

    return asset_check_alert_sensor


CURRENCY_CHECKS = ("source_is_current", "export_is_current")
"""Reported once a day by the deadline alert (alerts/freshness_alerts.py), which names every late dataset."""


def _alert(context: Any, slack: SlackAlerts, alerts: Alerts, evaluation: Any, run_id: str) -> int:
    log = scrubbed(context.log)  # every line the alert code writes is scrubbed of secrets
    if evaluation.check_name in CURRENCY_CHECKS:
        log.info(
            f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name} failed: reported by the "
            f"deadline alert on route {alerts.freshness_route} (one alert per day for all late data)"
        )
        return 0
    route = route_for(alerts, evaluation.check_name)
    title, payload = check_message(evaluation, run_id, ui_base_url(alerts))
    if evaluation.severity == dg.AssetCheckSeverity.WARN and route not in alerts.warn_routes:
        log.warning(f"{title} (WARN, log only): {payload['text']}")
        return 0
    slack.send(route, evaluation.severity.value, title, payload, log)
    return 1
