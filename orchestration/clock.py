"""The code location's one clock: London time now, from Dagster's clock (which tests may freeze)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster._time import get_current_datetime

LONDON = ZoneInfo("Europe/London")


def london_now() -> dt.datetime:
    return get_current_datetime().astimezone(LONDON)
