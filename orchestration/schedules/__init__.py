"""The scheduled jobs of pipeline.yaml `jobs:`: their asset selections, schedules and the
missed-tick rule (when a tick evaluated late after downtime still runs)."""

from __future__ import annotations

import dagster as dg

from orchestration.schedules.scheduled_jobs import build_scheduled_jobs
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    jobs, schedules = build_scheduled_jobs(config)
    return dg.Definitions(jobs=jobs, schedules=schedules)


__all__ = ["build_defs"]
