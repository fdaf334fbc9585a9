"""Running on the desktop: the scheduled jobs, the warehouse backup and the weekly housekeeping."""

from __future__ import annotations

import dagster as dg

from orchestration.ops.backup import build_backup_asset
from orchestration.ops.housekeeping import build_housekeeping
from orchestration.ops.schedules import build_scheduled_jobs
from orchestration.ops.watchdog import build_watchdog_sensor
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    jobs, schedules = build_scheduled_jobs(config)
    housekeeping_job, housekeeping_schedule = build_housekeeping(config)
    return dg.Definitions(
        assets=[build_backup_asset(config)],
        jobs=[*jobs, housekeeping_job],
        schedules=[*schedules, housekeeping_schedule],
        sensors=[build_watchdog_sensor()],
    )


__all__ = ["build_defs"]
