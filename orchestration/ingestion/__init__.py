"""Ingestion: one Azure Blob -> Parquet asset per configured (market, dataset), its freshness
checks, and the orders arrival sensors that launch a run when a market's orders file lands."""

from __future__ import annotations

import dagster as dg

from orchestration.ingestion import assets
from orchestration.ingestion.arrival import build_arrival_sensors
from pipeline_common.config import PipelineConfig


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions.merge(assets.build_defs(config), dg.Definitions(sensors=build_arrival_sensors(config)))


__all__ = ["build_defs"]
