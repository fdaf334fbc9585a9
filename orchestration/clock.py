"""The code location's one clock for freshness and file arrival: London time now (tests may replace it)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster._time import get_current_datetime

LONDON = ZoneInfo("Europe/London")


_source = get_current_datetime
"""Where "now" comes from; the simulated-week test points it at its fake clock."""


def london_now() -> dt.datetime:
    return _source().astimezone(LONDON)
