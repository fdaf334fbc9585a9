"""SharePoint budget workbook -> CSV ingestion: the `daily_sales_budget_exchange_ingest` asset
(assets.py) and the sensor that runs it when the workbook changes (arrival.py)."""

from __future__ import annotations

import dagster as dg

from orchestration.budget.arrival import build_budget_workbook_sensor
from orchestration.budget.assets import build_budget_asset
from orchestration.sensor_support import arrival_sensor_status
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_budget_asset(config)],
        sensors=[build_budget_workbook_sensor(config, arrival_sensor_status(config))],
    )


__all__ = ["build_defs"]
