"""The missed-tick rule: when a tick evaluated late (after downtime) still runs, and when it is skipped.

Dagster launches only the most recent missed tick of each schedule when the daemon comes back.
A tick runs unless it is more than `max_lateness_minutes` late, or the job that supersedes it
(`superseded_by`) has had a tick of its own since; then it is skipped with a reason that says
so (docs/operations.md, "Missed ticks").
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster._utils.schedules import cron_string_iterator


def next_tick_after(cron: str, after: dt.datetime, timezone: str) -> dt.datetime:
    """The first tick of `cron` strictly after `after`."""
    return next(cron_string_iterator(after.timestamp() + 1, cron, timezone))


def late_tick_reason(
    *,
    job_name: str,
    scheduled: dt.datetime,
    now: dt.datetime,
    max_lateness_minutes: int,
    timezone: str,
    superseded_by: tuple[str, str] | None = None,
) -> str | None:
    """Why the tick scheduled at `scheduled` should not run at `now`, or None when it should.

    superseded_by: (job name, cron) of the job whose later tick makes this one pointless.
    """
    late = now - scheduled
    local = scheduled.astimezone(ZoneInfo(timezone))
    when = local.strftime("%Y-%m-%d %H:%M %Z")
    if superseded_by is not None:
        other_name, other_cron = superseded_by
        other_tick = next_tick_after(other_cron, scheduled, timezone)
        if other_tick <= now:
            other_when = other_tick.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
            return (
                f"skipped {job_name} tick of {when}: evaluated {_minutes(late)} min late, and "
                f"{other_name} was due at {other_when} since, so that run replaces it "
                "(launch this job by hand if you still need it)"
            )
    if late > dt.timedelta(minutes=max_lateness_minutes):
        return (
            f"skipped {job_name} tick of {when}: evaluated {_minutes(late)} min late, more than the "
            f"{max_lateness_minutes} min allowed (max_lateness_minutes in pipeline.yaml); "
            "launch the job by hand if you still need this run"
        )
    return None


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60)
