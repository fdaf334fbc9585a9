"""Export freshness alerts: once a day per Tableau export that is not fresh by the 07:30 deadline.

"Fresh for today" = materialized at or after today's 00:00 Europe/London. The 07:30 dashboards
need all of yesterday's sales, which only a run after midnight has (the 15:45 run of the day
before stops mid-afternoon); the 07:15 morning job normally provides it. After the deadline a
stale export alerts once per day (route `alerts.freshness_route`, logistics by default), and
once more when it is materialized again ("recovered").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.alerts import blocks
from orchestration.alerts.run_alerts import ui_base_url
from orchestration.alerts.slack import SlackAlerts
from orchestration.ops.selection import export_asset_names
from pipeline_common.config import PipelineConfig

LONDON = ZoneInfo("Europe/London")


def london_now() -> dt.datetime:
    return dt.datetime.now(LONDON)


def day_start(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date(), dt.time(0, 0), tzinfo=LONDON)


def last_materialized(instance: dg.DagsterInstance, asset: str) -> dt.datetime | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return dt.datetime.fromtimestamp(event.timestamp, LONDON) if event else None


def evaluate_freshness(
    state: dict[str, dict[str, str]],
    asset: str,
    last: dt.datetime | None,
    now: dt.datetime,
    deadline: dt.time,
) -> str | None:
    """Update `state[asset]`; return "stale", "recovered" or None (nothing to say)."""
    entry = state.setdefault(asset, {})
    fresh = last is not None and last >= day_start(now)
    if fresh:
        if entry.get("status") == "stale":
            entry["status"] = "fresh"
            return "recovered"
        entry["status"] = "fresh"
        return None
    past_deadline = now.timetz().replace(tzinfo=None) >= deadline
    if past_deadline and entry.get("alerted_on") != now.date().isoformat():
        entry.update(status="stale", alerted_on=now.date().isoformat())
        return "stale"
    return None


def freshness_message(asset: str, verdict: str, last: dt.datetime | None, deadline: dt.time, base_url: str) -> tuple[str, dict, str]:
    seen = last.strftime("%Y-%m-%d %H:%M %Z") if last else "never"
    link = blocks.link(f"{base_url}/assets/{asset}", "Open the asset")
    if verdict == "stale":
        title = f"Export not fresh: {asset}"
        summary = f"`{asset}` has not been refreshed today by {deadline:%H:%M} Europe/London. {link}"
        return title, blocks.message(title, "ERROR", summary=summary, fields={"Last refreshed": seen}), "ERROR"
    title = f"Export fresh again: {asset}"
    return title, blocks.message(title, "OK", summary=f"`{asset}` refreshed at {seen}. {link}"), "OK"


def build_freshness_sensor(
    config: PipelineConfig, default_status: dg.DefaultSensorStatus
) -> Sequence[dg.SensorDefinition]:
    assets = export_asset_names(config)
    if not assets:
        return []
    alerts = config.alerts
    deadline = dt.time.fromisoformat(alerts.freshness_deadline)

    @dg.sensor(
        name="export_freshness_alert_sensor",
        default_status=default_status,
        minimum_interval_seconds=60,
        description=(
            f"Alerts (route {alerts.freshness_route}) once a day when an export is not refreshed since "
            f"00:00 by {deadline:%H:%M} Europe/London, and when it recovers."
        ),
    )
    def export_freshness_alert_sensor(context: dg.SensorEvaluationContext, slack_alerts: SlackAlerts):
        now = london_now()
        state = json.loads(context.cursor) if context.cursor else {}
        said = []
        for asset in assets:
            last = last_materialized(context.instance, asset)
            verdict = evaluate_freshness(state, asset, last, now, deadline)
            if verdict:
                title, payload, severity = freshness_message(asset, verdict, last, deadline, ui_base_url(alerts))
                slack_alerts.send(alerts.freshness_route, severity, title, payload, context.log)
                said.append(f"{asset}: {verdict}")
        context.update_cursor(json.dumps(state, sort_keys=True))
        return dg.SkipReason("; ".join(said) or "no change in export freshness")

    return [export_freshness_alert_sensor]
