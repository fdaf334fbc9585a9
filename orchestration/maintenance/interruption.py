"""Failing a run whose process is gone, the same way from start-up recovery and from the watchdog.

- **Whose run is it?** A run records the host it executes on (`retail_sales/host`, written by
  orchestration.run_launcher) and, in Docker, its container (`docker/container_id`). Only the
  host's own runs are judged here; a container's run is left to Dagster's run monitoring, which
  asks Docker about the container (a process id inside a container says nothing on this host).
- **What the failed run shows**: each step that had started and not ended gets a step failure
  naming the interruption (the UI no longer lists it under "Executing"), then the run fails with
  the reason and `dagster/failure_reason=UNEXPECTED_TERMINATION`, its pool slots are freed.
- **Retried or not, one story**: the caller decides; the message says it, and `dagster/will_retry`
  is written after the failure event (Dagster recomputes the tag from the run's
  `dagster/max_retries` while storing that event, which used to overwrite a "false" set before).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.execution.plan.objects import ErrorSource, StepFailureData
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import WILL_RETRY_TAG
from dagster._utils.error import SerializableErrorInfo

from orchestration.hosts import CONTAINER_TAG, HOST_TAG

INTERRUPTED_ERROR_CLASS = "RunInterrupted"
_STEP_EVENTS = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_RESTARTED,
    DagsterEventType.STEP_UP_FOR_RETRY,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
}
_ENDED = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}


@dataclass(frozen=True)
class Ownership:
    """Whether this host may judge a run: `own`, `other` (another host's), `container`, `unknown`."""

    kind: str
    detail: str = ""


def ownership(run: dg.DagsterRun, own_host: str, shared_storage: bool) -> Ownership:
    if run.tags.get(CONTAINER_TAG):
        return Ownership("container", run.tags[CONTAINER_TAG][:12])
    host = run.tags.get(HOST_TAG)
    if host is None:
        # Launched before runs recorded their host, or executed in-process (`dagster job execute`).
        # A SQLite home has one host by construction; shared storage may have several.
        return Ownership("unknown") if shared_storage else Ownership("own")
    return Ownership("own") if host == own_host else Ownership("other", host)


def shared_storage(instance: dg.DagsterInstance) -> bool:
    """Postgres (or any storage but SQLite) can be reached from several hosts."""
    return "Sqlite" not in type(instance.run_storage).__name__


def unfinished_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, DagsterEvent]:
    """Steps whose last event is a start, restart or retry request: step key -> that event."""
    last: dict[str, DagsterEvent] = {}
    for entry in instance.all_logs(run_id, of_type=_STEP_EVENTS):
        event = entry.dagster_event
        if event is not None and event.step_key:
            last[event.step_key] = event
    return {key: event for key, event in last.items() if event.event_type not in _ENDED}


def end_unfinished_steps(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> list[str]:
    """A step failure for every step left running, so no step of an ended run shows as executing."""
    ended = []
    for step_key, last in unfinished_steps(instance, run.run_id).items():
        error = SerializableErrorInfo(
            message=f"{INTERRUPTED_ERROR_CLASS}: {reason}\n", stack=[], cls_name=INTERRUPTED_ERROR_CLASS
        )
        event = DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value,
            job_name=run.job_name,
            step_key=step_key,
            node_handle=last.node_handle,
            step_kind_value=last.step_kind_value,
            logging_tags=last.logging_tags,
            event_specific_data=StepFailureData(error=error, user_failure_data=None, error_source=ErrorSource.INTERRUPT),
            message=f'Step "{step_key}" was interrupted and did not finish: {reason}',
        )
        instance.report_dagster_event(event, run_id=run.run_id, log_level=logging.ERROR)
        ended.append(step_key)
    return ended


def end_interrupted_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, message: str, step_reason: str, retry: bool
) -> list[str]:
    """Fail (a CANCELING run: cancel) `run`, end its steps, free its slots, and make
    `dagster/will_retry` say `retry`. Returns the step keys that were ended."""
    steps = end_unfinished_steps(instance, run, step_reason)
    if run.status == DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, message=message)
    else:
        instance.report_run_failed(
            run,
            message=message,
            job_failure_data=JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )
    # After the failure event: storing it recomputed the tag from the run's dagster/max_retries.
    # The retry daemon reads the tag when it processes the event, so this is what it acts on.
    instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: str(retry).lower()})
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return steps


def would_retry(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Dagster's own rule (run retries on, dagster/max_retries left) for this run once failed."""
    if not instance.run_retries_enabled:
        return False
    from dagster._core.execution.retries import auto_reexecution_should_retry_run

    failed = run.with_status(DagsterRunStatus.FAILURE)
    return bool(auto_reexecution_should_retry_run(instance, failed, RunFailureReason.UNEXPECTED_TERMINATION))
