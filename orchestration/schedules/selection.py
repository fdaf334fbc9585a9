"""Turn a scheduled job's `selection:` block of pipeline.yaml into a Dagster AssetSelection.

Names come from the config (datasets, exports) and group names, never repeated here, so a new
market or export joins the right jobs with a config edit.
"""

from __future__ import annotations

import dagster as dg

from pipeline_common.config import JobSelection, PipelineConfig

WAREHOUSE_BACKUP_ASSET = "warehouse_backup"
OPS_GROUP = "ops"


def ingestion_asset_names(config: PipelineConfig, selection: JobSelection) -> list[str]:
    """Ingestion assets of the configured datasets whose cadence (and market) the job selects."""
    markets = set(selection.markets) if selection.markets is not None else set(config.markets)
    return [
        config.asset_name(entry.market, entry.dataset)
        for entry in config.datasets
        if config.dataset_type(entry.dataset).cadence in selection.cadences and entry.market in markets
    ]


def export_asset_names(config: PipelineConfig) -> list[str]:
    return [export.asset for export in config.exports]


def asset_selection(config: PipelineConfig, selection: JobSelection) -> dg.AssetSelection:
    chosen = dg.AssetSelection.assets(*ingestion_asset_names(config, selection))
    if selection.groups:
        chosen = chosen | dg.AssetSelection.groups(*selection.groups)
    if selection.exports:
        chosen = chosen | dg.AssetSelection.assets(*export_asset_names(config)).upstream()
    if selection.downstream:
        chosen = chosen.downstream()
    # The backup depends on the exports, so `downstream` would drag it into any job: add it only on request.
    chosen = chosen - dg.AssetSelection.assets(WAREHOUSE_BACKUP_ASSET)
    if selection.backup:
        chosen = chosen | dg.AssetSelection.assets(WAREHOUSE_BACKUP_ASSET)
    return chosen.materializable()
