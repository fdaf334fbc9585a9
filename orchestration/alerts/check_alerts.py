"""Alerts for failed asset checks (dbt tests, sentinels, ingestion checks), read from the event log.

A sensor walks ASSET_CHECK_EVALUATION records after its cursor (a storage id). A failed check
of severity ERROR goes to its route (a sentinel's own route, else `alerts.check_route`); WARN
goes to the log, and to Slack only for routes listed in `alerts.warn_routes`.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import DagsterEventType

from orchestration.alerts import blocks
from orchestration.alerts.run_alerts import ui_base_url
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import Alerts

BATCH = 50
FIELD_VALUE_CHARS = 300


def _latest_check_storage_id(instance: dg.DagsterInstance) -> int:
    records = instance.event_log_storage.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=1, ascending=False
    )
    return records[0].storage_id if records else 0


def new_check_records(instance: dg.DagsterInstance, after: int, limit: int = BATCH) -> list[Any]:
    return list(
        instance.event_log_storage.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
            limit=limit,
            ascending=True,
        )
    )


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
        fields[key] = blocks.escape(blocks.clip(metadata_text(value), FIELD_VALUE_CHARS))
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
            context.update_cursor(str(_latest_check_storage_id(context.instance)))
            return dg.SkipReason("cursor initialised at the newest check evaluation")
        records = new_check_records(context.instance, int(context.cursor))
        sent = 0
        for record in records:
            evaluation = record.event_log_entry.dagster_event.asset_check_evaluation_data
            if not evaluation.passed:
                sent += _alert(context, slack_alerts, alerts, evaluation, record.run_id)
            context.update_cursor(str(record.storage_id))
        if not records:
            return dg.SkipReason("no new check evaluations")
        return dg.SkipReason(f"{len(records)} check evaluation(s) read, {sent} alert(s) sent")

    return asset_check_alert_sensor


def _alert(context: Any, slack: SlackAlerts, alerts: Alerts, evaluation: Any, run_id: str) -> int:
    route = route_for(alerts, evaluation.check_name)
    title, payload = check_message(evaluation, run_id, ui_base_url(alerts))
    if evaluation.severity == dg.AssetCheckSeverity.WARN and route not in alerts.warn_routes:
        context.log.warning(f"{title} (WARN, log only): {payload['text']}")
        return 0
    slack.send(route, evaluation.severity.value, title, payload, context.log)
    return 1
