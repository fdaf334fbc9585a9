"""Keeping the desktop install healthy: the warehouse backup asset, the weekly housekeeping job,
the run-worker watchdog sensor, and the start-up recovery the supervisor runs
(`python -m orchestration.maintenance.recovery`)."""

from __future__ import annotations

import dagster as dg

from orchestration.maintenance.warehouse_backup import build_backup_asset
from orchestration.maintenance.housekeeping import build_housekeeping
from orchestration.maintenance.watchdog import build_watchdog_sensor
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    housekeeping_job, housekeeping_schedule = build_housekeeping(config)
    return dg.Definitions(
        assets=[build_backup_asset(config)],
        jobs=[housekeeping_job],
        schedules=[housekeeping_schedule],
        sensors=[build_watchdog_sensor()],
    )


__all__ = ["build_defs"]
