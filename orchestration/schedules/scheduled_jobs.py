"""The scheduled asset jobs of contract section 7, one per `jobs.scheduled` entry in pipeline.yaml."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._time import get_current_datetime

from orchestration.schedules.lateness import late_tick_reason
from orchestration.schedules.selection import asset_selection
from orchestration.resources import DUCKDB_RUN_TAG
from pipeline_common.config import PipelineConfig, ScheduledJob

MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_ON_STEP_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


def schedule_name(job_name: str) -> str:
    return f"{job_name.removesuffix('_job')}_schedule"


def job_tags(entry: ScheduledJob) -> dict[str, str]:
    tags = {"pipeline/scheduled_job": entry.name}
    if entry.warehouse:
        tags[DUCKDB_RUN_TAG] = "true"
    if entry.run_retries:
        # Whole-run retries are for a dead run worker (reboot, crash); a failed asset has its own
        # RetryPolicy and a bad-data failure must not be retried at all.
        tags[MAX_RETRIES_TAG] = str(entry.run_retries)
        tags[RETRY_ON_STEP_FAILURE_TAG] = "false"
    return tags


def build_job(config: PipelineConfig, entry: ScheduledJob) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=entry.name,
        selection=asset_selection(config, entry.selection),
        description=entry.description,
        tags=job_tags(entry),
        # One process per step costs seconds of Python start-up each on a 2-core desktop; the heavy
        # work already runs outside (scripts through Pipes, dbt), so steps run in the run worker.
        executor_def=dg.in_process_executor,
    )


def build_schedule(
    config: PipelineConfig, entry: ScheduledJob, job: UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    superseding = _superseding(config, entry)

    @dg.schedule(
        name=schedule_name(entry.name),
        cron_schedule=entry.cron,
        job=job,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{entry.description} ({entry.cron}, {config.timezone})",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        scheduled = context.scheduled_execution_time
        if scheduled is not None:
            reason = late_tick_reason(
                job_name=entry.name,
                scheduled=scheduled,
                now=get_current_datetime(),
                max_lateness_minutes=entry.max_lateness_minutes,
                timezone=config.timezone,
                superseded_by=superseding,
            )
            if reason:
                context.log.info(reason)
                return dg.SkipReason(reason)
        return dg.RunRequest()

    return _schedule


def _superseding(config: PipelineConfig, entry: ScheduledJob) -> tuple[str, str] | None:
    if entry.superseded_by is None:
        return None
    for other in config.jobs.scheduled:
        if other.name == entry.superseded_by:
            return other.name, other.cron
    known = [other.name for other in config.jobs.scheduled]
    raise ValueError(f"jobs.scheduled {entry.name}: superseded_by {entry.superseded_by!r} is not a job; known: {known}")


def build_scheduled_jobs(config: PipelineConfig) -> tuple[list, list[dg.ScheduleDefinition]]:
    jobs, schedules = [], []
    for entry in config.jobs.scheduled:
        job = build_job(config, entry)
        jobs.append(job)
        schedules.append(build_schedule(config, entry, job))
    return jobs, schedules
