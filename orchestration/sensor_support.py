"""What every file-arrival sensor shares: the tag that says why a run started, and how a tick treats a
source it cannot read (orchestration/ingestion/arrival.py, orchestration/budget/arrival.py)."""

from __future__ import annotations

import dagster as dg

from pipeline_common.config import PipelineConfig
from pipeline_common.script_support import ConfigurationError, ScriptError
from pipeline_common.secrets import scrub

TRIGGER_TAG = "pipeline/trigger"
"""Run tag: which file started the run, and what happened to it (arrived, changed, retried)."""


def arrival_sensor_status(config: PipelineConfig) -> dg.DefaultSensorStatus:
    """Every arrival sensor starts as pipeline.yaml `alerts.arrival_sensors.running_by_default` says."""
    running = config.alerts.arrival_sensors.running_by_default
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def source_problem(context: dg.SensorEvaluationContext, exc: ScriptError) -> dg.SkipReason:
    """A source the sensor cannot read: transient trouble skips this tick; a configuration error fails it."""
    message = scrub(exc)
    if isinstance(exc, ConfigurationError):
        raise dg.DagsterError(message) from None  # a failed tick shows in the UI until the variable is fixed
    context.log.warning(message)
    return dg.SkipReason(f"source not reachable this time: {message}")
