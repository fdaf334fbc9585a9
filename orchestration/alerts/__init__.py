"""Alerting: Slack routes by severity and domain, run failure/recovery, failed checks (the sentinel
control queries are the warehouse domain's checks: orchestration/warehouse/sentinels.py) and
export freshness. Everything is configured under `alerts:` in pipeline.yaml."""

from __future__ import annotations

import dagster as dg

from orchestration.alerts.check_alerts import build_check_alert_sensor
from orchestration.alerts.freshness_alerts import build_freshness_sensor
from orchestration.alerts.run_alerts import build_run_alert_sensors
from orchestration.alerts.slack import slack_alerts_from_config
from pipeline_common.config import PipelineConfig

# Alerting runs by default on a fresh install: an alert nobody switched on is no alert.
ALERT_SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING


def build_defs(config: PipelineConfig) -> dg.Definitions:
    alerts = config.alerts
    sensors = [
        *build_run_alert_sensors(alerts, ALERT_SENSOR_STATUS),
        build_check_alert_sensor(alerts, ALERT_SENSOR_STATUS),
        *build_freshness_sensor(config, ALERT_SENSOR_STATUS),
    ]
    return dg.Definitions(
        sensors=sensors,
        resources={"slack_alerts": slack_alerts_from_config(alerts)},
    )


__all__ = ["build_defs"]
