"""The exports' FreshnessPolicy, derived from the same deadline and lookback as every other
freshness verdict (pipeline_common/freshness.py): rebuilt between midnight and 07:30 London."""

from __future__ import annotations

import dagster as dg

from pipeline_common import freshness
from pipeline_common.config import PipelineConfig


def deadline_cron(deadline: str) -> str:
    """'07:30' -> '30 7 * * *' (daily)."""
    hours, minutes = (int(part) for part in deadline.split(":"))
    return f"{minutes} {hours} * * *"


def export_freshness_policy(config: PipelineConfig) -> dg.FreshnessPolicy:
    """Fails at the deadline unless the export was rebuilt since the midnight before it: no earlier build
    can hold the day before's data, which is what freshness requires of an export at the deadline."""
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline_cron(config.alerts.freshness_deadline),
        lower_bound_delta=freshness.freshness_lookback(config),
        timezone=config.timezone,
    )
