"""The freshness report (pipeline_common/freshness.py) on a Dagster instance: the exports' rebuild
times come from their latest materializations, everything else from the pipeline's files."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline_common import freshness
from pipeline_common.config import PipelineConfig
from pipeline_common.settings import raw_dir


def export_rebuilds(instance: dg.DagsterInstance, config: PipelineConfig) -> dict[str, dt.datetime | None]:
    rebuilt: dict[str, dt.datetime | None] = {}
    for export in config.exports:
        event = instance.get_latest_materialization_event(dg.AssetKey(export.asset))
        rebuilt[export.asset] = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc) if event else None
    return rebuilt


def freshness_report(
    instance: dg.DagsterInstance, config: PipelineConfig, at: dt.datetime, lookup: freshness.Lookup | None = None
) -> freshness.FreshnessReport:
    """Every daily dataset's and export's freshness at `at`; `lookup` defaults to the sync's source."""
    facts = freshness.gather_facts(config, at, raw_dir(), lookup or freshness.source_lookup())
    return freshness.evaluate(config, at, facts, export_rebuilds(instance, config))
