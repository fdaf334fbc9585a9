"""Asset selections from dbt selector strings, for jobs (e.g. `+qi_executive_daily_sales`)."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from orchestration.warehouse.assets import build_dbt_assets
from pipeline_common.config import PipelineConfig, load_pipeline_config

_assets_cache: dict[int, tuple[PipelineConfig, dg.AssetsDefinition]] = {}


def _dbt_assets_for(config: PipelineConfig) -> dg.AssetsDefinition:
    cached = _assets_cache.get(id(config))
    if cached is None or cached[0] is not config:
        cached = (config, build_dbt_assets(config))
        _assets_cache[id(config)] = cached
    return cached[1]


def dbt_selection(select: str, config: PipelineConfig | None = None) -> dg.AssetSelection:
    """The dbt models (and their checks) matching a dbt selector, e.g. dbt_selection('+qi_executive_daily_sales').

    Upstream non-dbt assets are not included; add `.upstream()` for those.
    """
    assets = _dbt_assets_for(config or load_pipeline_config())
    return build_dbt_asset_selection([assets], dbt_select=select)
