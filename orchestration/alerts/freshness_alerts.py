"""The deadline alert: at 07:30 London, is the data current? (contract section 9)

The verdict is pipeline_common/freshness.py's, the same as status.py's and the UI's checks. From the
deadline on, when an export is not current, one alert a day goes to `alerts.freshness_route` naming
each late market and dataset and why; one "current again" message follows when every export is
current. When Tableau is configured, each late export's published data source carries a Tableau
data quality warning saying what is late, removed once the export is current again. Failing
`source_is_current` / `export_is_current` checks are reported here (once), not per check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import dagster as dg

from orchestration.alerts import blocks
from orchestration.alerts.run_alerts import ui_base_url
from orchestration.alerts.slack import SlackAlerts
from orchestration.clock import business_now
from orchestration.instance_freshness import freshness_report
from pipeline_common import freshness
from pipeline_common.config import PipelineConfig, business_zone

FRESHNESS_SENSOR = "export_freshness_alert_sensor"


def late_message(report: freshness.FreshnessReport, config: PipelineConfig, base_url: str) -> tuple[str, dict]:
    cut = freshness.deadline(config)
    late = report.late_sources
    names = ", ".join(s.label for s in late) or ", ".join(e.name for e in report.exports if not e.current)
    title = f"Data not current at {cut:%H:%M}: {names}"
    lines = [f"- {blocks.escape(line)}" for line in report.reasons()]
    summary = (
        f"The Tableau extracts do not hold yesterday's data for everyone at {cut:%H:%M} {config.timezone}.\n"
        + "\n".join(lines) + "\n" + blocks.link(f"{base_url}/assets", "Open the assets")
    )
    fields = {
        e.name: blocks.escape(
            ("current" if e.current else "NOT CURRENT") + f", data through {e.data_through or 'none'}"
        )
        for e in report.exports
    }
    return title, blocks.message(title, "ERROR", summary=summary, fields=fields)


def recovered_message(report: freshness.FreshnessReport) -> tuple[str, dict]:
    title = "Data current again"
    held = ", ".join(f"{e.name} through {e.data_through}" for e in report.exports)
    at = report.at.astimezone(business_zone())
    return title, blocks.message(title, "OK", summary=f"Every export is current as of {at:%Y-%m-%d %H:%M %Z}: {held}.")


def warning_text(report: freshness.FreshnessReport, asset: str) -> str:
    export = report.export(asset)
    late = [f"{s.label}: {s.why()}" for s in report.late_sources if s.label in export.late_sources]
    return "Data not current: " + ("; ".join(late) or export.reason)


def _tableau():
    """The publisher's Tableau settings (None when unconfigured) and the warning functions."""
    from create_hyper_files import data_quality_warning
    from create_hyper_files.tableau_publisher import tableau_settings

    return tableau_settings(), data_quality_warning


def sync_tableau_warnings(
    report: freshness.FreshnessReport, config: PipelineConfig, warned: dict[str, str], log: Any
) -> dict[str, str]:
    """Warn on each late export's data source (from the deadline on); clear the warnings of current ones.
    `warned`: export asset -> warning text already set. Returns the new mapping."""
    try:
        settings, dqw = _tableau()
    except Exception as exc:  # half-configured Tableau: the publisher's own error says what is missing
        log.warning(f"Tableau data quality warnings skipped: {exc}")
        return warned
    if settings is None:
        return {}
    logger = logging.getLogger("orchestration.tableau_warning")
    result = dict(warned)
    past = freshness.past_deadline(config, report.at)
    for export in config.exports:
        status = report.export(export.asset)
        try:
            if not status.current and past:
                text = warning_text(report, export.asset)
                if warned.get(export.asset) != text and dqw.set_warning(settings, export.name, text, logger):
                    result[export.asset] = text
                    log.info(f"Tableau data quality warning on {export.name}: {text}")
            elif status.current and export.asset in warned:
                dqw.clear_warning(settings, export.name, logger)
                result.pop(export.asset)
                log.info(f"Tableau data quality warning removed from {export.name}")
        except Exception as exc:  # Tableau down must not stop the Slack alert; the next tick tries again
            log.warning(f"Tableau data quality warning for {export.name} failed: {exc}")
    return result


def evaluate_deadline(state: dict[str, Any], report: freshness.FreshnessReport, config: PipelineConfig) -> str | None:
    """Update `state`; return "late", "recovered" or None (nothing to say)."""
    exports_current = all(e.current for e in report.exports)
    if exports_current:
        if state.get("outstanding"):
            state["outstanding"] = False
            return "recovered"
        return None
    today = report.at.astimezone(business_zone()).date().isoformat()
    if freshness.past_deadline(config, report.at) and state.get("alerted_on") != today:
        state.update(alerted_on=today, outstanding=True)
        return "late"
    return None


def build_freshness_sensor(
    config: PipelineConfig, default_status: dg.DefaultSensorStatus
) -> Sequence[dg.SensorDefinition]:
    if not config.exports:
        return []
    alerts = config.alerts

    @dg.sensor(
        name=FRESHNESS_SENSOR,
        default_status=default_status,
        minimum_interval_seconds=60,
        description=(
            f"From {alerts.freshness_deadline} {config.timezone}: one alert a day (route {alerts.freshness_route}) naming "
            "each late market and dataset and why when an export is not current, one when it is current "
            "again; Tableau data quality warnings on late exports when Tableau is configured."
        ),
    )
    def export_freshness_alert_sensor(context: dg.SensorEvaluationContext, slack_alerts: SlackAlerts):
        report = freshness_report(context.instance, config, business_now())
        state = json.loads(context.cursor) if context.cursor else {}
        verdict = evaluate_deadline(state, report, config)
        if verdict == "late":
            title, payload = late_message(report, config, ui_base_url(alerts))
            slack_alerts.send(alerts.freshness_route, "ERROR", title, payload, context.log)
        elif verdict == "recovered":
            title, payload = recovered_message(report)
            slack_alerts.send(alerts.freshness_route, "OK", title, payload, context.log)
        state["tableau_warned"] = sync_tableau_warnings(report, config, state.get("tableau_warned", {}), context.log)
        context.update_cursor(json.dumps(state, sort_keys=True))
        return dg.SkipReason(f"{verdict or 'no change'}: {report.headline()}")

    return [export_freshness_alert_sensor]
