"""How dbt nodes become Dagster assets: groups and tags from the model's folders, keys from names.

Layer = the first folder under models/, market = the next one (`models/staging/uk/...`).
dbt sources map to the ingestion assets named in pipeline.yaml, so lineage has no orphans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from pipeline_common.config import PipelineConfig

CROSS_MARKET = "cross_market"
BUDGET_FOLDER = "budget"
BUDGET_STAGING_GROUP = "dbt_staging_budget_sharepoint"


class UnmappedSourceError(ValueError):
    """A dbt source with no upstream asset: it would show as an orphan in the asset graph."""


def model_folders(fqn: Sequence[str]) -> list[str]:
    """Folders of a model under models/: fqn is [project, *folders, model_name]."""
    return list(fqn[1:-1])


def layer_and_market(fqn: Sequence[str]) -> tuple[str | None, str | None]:
    folders = model_folders(fqn)
    layer = folders[0] if folders else None
    market = folders[1] if len(folders) > 1 else None
    return layer, market


def group_name(layer: str | None, market: str | None) -> str | None:
    """Dagster group of a model from its layer and market folders."""
    if layer == "staging":
        if market == BUDGET_FOLDER:
            return BUDGET_STAGING_GROUP
        return f"dbt_staging_{market}_azure" if market else "dbt_staging"
    if layer == "intermediate":
        return f"dbt_transformations_{market or CROSS_MARKET}"
    if layer == "marts":
        if market in (None, CROSS_MARKET):
            return f"dbt_marts_{CROSS_MARKET}"
        return f"dbt_marts_{market}_commercial"
    return None


def market_tag(market: str | None, known_markets: Sequence[str]) -> dict[str, str]:
    """`market: uk` for models in a configured market's folder; nothing for budget or cross-market."""
    if market and market.upper() in {m.upper() for m in known_markets}:
        return {"market": market.lower()}
    return {}


def dagster_meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = (props.get("config") or {}).get("meta") or props.get("meta") or {}
    return meta.get("dagster") or {}


def source_asset_key(props: Mapping[str, Any], config: PipelineConfig) -> dg.AssetKey:
    """A dbt source's upstream asset: meta.dagster.asset_key, else config.asset_name(market, dataset)."""
    explicit = dagster_meta(props).get("asset_key")
    if explicit:
        return dg.AssetKey(explicit)
    market, dataset = props["source_name"], props["name"]
    if market in config.markets and dataset in config.dataset_types:
        return dg.AssetKey(config.asset_name(market, dataset))
    raise UnmappedSourceError(
        f"dbt source {market}.{dataset} ({props.get('original_file_path')}) has no upstream asset: "
        "configure the market/dataset in pipeline.yaml or set meta.dagster.asset_key on the source"
    )


class WarehouseTranslator(DagsterDbtTranslator):
    """Bare model names as keys, groups from folders, market tags; sources -> ingestion assets."""

    def __init__(
        self, config: PipelineConfig, settings: DagsterDbtTranslatorSettings | None = None, code_references: bool = False
    ):
        # Both budget CSVs come from one ingest asset, so two sources share its key. Code references
        # (each model -> its .sql, the UI's "open source") need the DbtProject given to @dbt_assets.
        super().__init__(
            settings
            or DagsterDbtTranslatorSettings(
                enable_duplicate_source_asset_keys=True, enable_code_references=code_references
            )
        )
        self._config = config

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return source_asset_key(dbt_resource_props, self._config)
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return group_name(*layer_and_market(dbt_resource_props["fqn"]))

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        """dbt's spec, except that a test of a gated staging model does not block (its gate does).

        Such a failure holds back the market's gates inside the dbt build (orchestration/warehouse/
        gates.py); the other markets' models and extracts must still run after the step.
        """
        from orchestration.warehouse.gates import is_contained

        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is not None and spec.blocking and is_contained(manifest, unique_id):
            spec = spec._replace(blocking=False)
        return spec

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        if dbt_resource_props["resource_type"] != "source":
            _, market = layer_and_market(dbt_resource_props["fqn"])
            tags.update(market_tag(market, list(self._config.markets)))
        return tags
