"""When the Tableau extracts must be fresh: the commercial team opens the dashboards at 07:30 London time."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline_common.config import DEFAULT_FRESHNESS_DEADLINE

EXPORT_DEADLINE = DEFAULT_FRESHNESS_DEADLINE
"""The default deadline; pipeline.yaml `alerts.freshness_deadline` is what the policy, the alert
sensor and scripts/status.py all use."""

EXPORT_TIMEZONE = "Europe/London"

EXPORT_LOOKBACK = dt.timedelta(hours=16)
"""A build counts from 15:30 the day before: the 15:45 daily flow or the 07:15 morning refresh."""


def deadline_cron(deadline: str = EXPORT_DEADLINE) -> str:
    """'07:30' -> '30 7 * * *' (daily)."""
    hours, minutes = (int(part) for part in deadline.split(":"))
    return f"{minutes} {hours} * * *"


def export_freshness_policy(
    deadline: str = EXPORT_DEADLINE, timezone: str = EXPORT_TIMEZONE
) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline_cron(deadline), lower_bound_delta=EXPORT_LOOKBACK, timezone=timezone
    )
