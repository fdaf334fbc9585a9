"""Run-failure and recovery alerts for every job in the code location (route: technical by default).

One alert per failed run that will not be retried: step retries never fail a run, and when run
retries are on (tag `dagster/max_retries`) only the final failed attempt is alerted. A later
success of the same job (and market, for sensor-launched runs) after an alerted failure sends
a short "recovered" message.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.tags import RETRY_NUMBER_TAG, WILL_RETRY_TAG

from orchestration.alerts import blocks
from orchestration.alerts.slack import SlackAlerts, scrubbed
from pipeline_common.config import Alerts, business_zone

UI_BASE_URL_ENV_VAR = "DAGSTER_UI_BASE_URL"
ERROR_LINES = 8
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
IDENTITY_TAG = "market"  # sensor-launched runs of one asset job differ by market


def ui_base_url(alerts: Alerts) -> str:
    return (os.environ.get(UI_BASE_URL_ENV_VAR, "").strip() or alerts.ui_base_url).rstrip("/")


def attempt_number(run: dg.DagsterRun) -> int:
    return int(run.tags.get(RETRY_NUMBER_TAG, "0")) + 1


def will_be_retried(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether Dagster's run-retry daemon will re-execute this failed run."""
    tag = run.tags.get(WILL_RETRY_TAG)
    if tag is not None:
        return tag.lower() == "true"
    if not instance.run_retries_enabled:
        return False
    # The tag is written when the failure is stored; if it is missing, ask the daemon's own rule.
    from dagster._core.execution.retries import auto_reexecution_should_retry_run

    return bool(auto_reexecution_should_retry_run(instance, run, None))


def first_lines(text: str, count: int = ERROR_LINES) -> str:
    return "\n".join(text.strip().splitlines()[:count])


def business_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "not started"
    return dt.datetime.fromtimestamp(timestamp, business_zone()).strftime("%Y-%m-%d %H:%M:%S %Z")


def error_text(error) -> str:
    """The error's first lines, then its root cause's (a retried step's own error is the cause)."""
    text = first_lines(error.message)
    root = error
    while root.cause is not None:
        root = root.cause
    if root is not error:
        text += "\ncaused by: " + first_lines(root.message)
    return text


def _failure_details(context: dg.RunFailureSensorContext) -> tuple[list[str], str]:
    steps: list[str] = []
    errors: list[str] = []
    for event in context.get_step_failure_events():
        steps.append(event.step_key or "?")
        error = getattr(event.event_specific_data, "error", None)
        errors.append(f"{event.step_key}: {error_text(error) if error else first_lines(event.message or '')}")
    if not errors:  # the run failed outside any step (launch, resources, a cancelled dependency, a dead worker)
        errors.append(first_lines(_run_level_reason(context)))
    return steps, "\n".join(errors)


GENERIC_FAILURE = "This run has been marked as failed from outside the execution context."
CRASH_PREFIX = "Run execution process for"


def _run_level_reason(context: dg.RunFailureSensorContext) -> str:
    """The failure's message; when Dagster's code server failed the run because its worker process died,
    its own message is generic and the cause is in an engine event ("... terminated by signal 9")."""
    message = context.failure_event.message or "no error message"
    if message.strip() != GENERIC_FAILURE:
        return message
    from dagster._core.events import DagsterEventType

    for entry in reversed(context.instance.all_logs(context.dagster_run.run_id, of_type=DagsterEventType.ENGINE_EVENT)):
        text = (entry.dagster_event.message if entry.dagster_event else None) or entry.user_message or ""
        # The code server prefixes its own class name: "[DagsterApiServer] Run execution process for ..."
        if CRASH_PREFIX in text:
            return f"The run's worker process died: {text[text.index(CRASH_PREFIX):]}"
    return message


def failure_message(context: dg.RunFailureSensorContext, base_url: str) -> tuple[str, dict]:
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    steps, errors = _failure_details(context)
    market = run.tags.get(IDENTITY_TAG)
    title = f"Run failed: {run.job_name}" + (f" ({market})" if market else "")
    fields = {
        "Job": blocks.escape(run.job_name),
        "Failed step(s)": blocks.escape(", ".join(steps) or "none (run-level failure)"),
        f"Started ({business_zone().key})": business_time(record.start_time if record else None),
        "Attempt": str(attempt_number(run)),
    }
    payload = blocks.message(
        title,
        "ERROR",
        summary=blocks.link(f"{base_url}/runs/{run.run_id}", f"Open run {run.run_id[:8]} in Dagster"),
        fields=fields,
        details=errors,
        context=[f"run `{run.run_id}`"],
    )
    return title, payload


def _same_job_filter(run: dg.DagsterRun) -> dg.RunsFilter:
    tags = {IDENTITY_TAG: run.tags[IDENTITY_TAG]} if IDENTITY_TAG in run.tags else {}
    return dg.RunsFilter(job_name=run.job_name, statuses=FINISHED, tags=tags)


def previous_finished_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun | None:
    """The newest finished run of the same job (and market) created before `run`."""
    this = instance.get_run_record_by_id(run.run_id)
    for record in instance.get_run_records(filters=_same_job_filter(run), limit=20):
        if record.dagster_run.run_id == run.run_id:
            continue
        if this is None or record.create_timestamp <= this.create_timestamp:
            return record.dagster_run
    return None


def recovery_message(run: dg.DagsterRun, failed: dg.DagsterRun, base_url: str) -> tuple[str, dict]:
    market = run.tags.get(IDENTITY_TAG)
    title = f"Recovered: {run.job_name}" + (f" ({market})" if market else "")
    summary = (
        f"{blocks.link(f'{base_url}/runs/{run.run_id}', 'This run')} succeeded after "
        f"{blocks.link(f'{base_url}/runs/{failed.run_id}', 'the failed run')}."
    )
    return title, blocks.message(title, "OK", summary=summary)


def build_run_alert_sensors(alerts: Alerts, default_status: dg.DefaultSensorStatus) -> Sequence[dg.SensorDefinition]:
    route = alerts.run_failure_route

    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=default_status,
        minimum_interval_seconds=30,
        description=f"Slack alert (route {route}) for each failed run that will not be retried.",
    )
    def run_failure_alert_sensor(context: dg.RunFailureSensorContext, slack_alerts: SlackAlerts):
        run = context.instance.get_run_by_id(context.dagster_run.run_id) or context.dagster_run
        if will_be_retried(context.instance, run):
            scrubbed(context.log).info(f"run {run.run_id} (attempt {attempt_number(run)}) will be retried: no alert yet")
            return
        title, payload = failure_message(context, ui_base_url(alerts))
        slack_alerts.send(route, "ERROR", title, payload, scrubbed(context.log))

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="run_recovery_alert_sensor",
        default_status=default_status,
        minimum_interval_seconds=30,
        description=f"Slack note (route {route}) when a job succeeds after an alerted failure.",
    )
    def run_recovery_alert_sensor(context: dg.RunStatusSensorContext, slack_alerts: SlackAlerts):
        run = context.dagster_run
        previous = previous_finished_run(context.instance, run)
        # A failure that was retried was never alerted, so its retry's success is no news.
        if previous is None or previous.status != dg.DagsterRunStatus.FAILURE:
            return
        if will_be_retried(context.instance, previous):
            return
        title, payload = recovery_message(run, previous, ui_base_url(alerts))
        slack_alerts.send(route, "OK", title, payload, scrubbed(context.log))

    return [run_failure_alert_sensor, run_recovery_alert_sensor]
