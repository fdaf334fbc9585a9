"""Sensors that launch runs when source files arrive (orders per market, the budget workbook)."""

from __future__ import annotations

import dagster as dg

from orchestration.sensors.arrival import build_arrival_sensors
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(sensors=build_arrival_sensors(config))


__all__ = ["build_defs"]
