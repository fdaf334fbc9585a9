"""The code location's one clock for freshness and file arrival: now in the business time zone
(pipeline.yaml `timezone`); tests may replace the source."""

from __future__ import annotations

import datetime as dt

from dagster._time import get_current_datetime

from pipeline_common.config import business_zone

_source = get_current_datetime
"""Where "now" comes from; the simulated-week test points it at its fake clock."""


def business_now() -> dt.datetime:
    return _source().astimezone(business_zone())


def business_today() -> dt.date:
    return business_now().date()
