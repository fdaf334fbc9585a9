"""The dbt -> Dagster translator on a small hand-built manifest (no dbt run, no parse)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from orchestration.warehouse.translator import (
    BUDGET_STAGING_GROUP,
    UnmappedSourceError,
    WarehouseTranslator,
    group_name,
    layer_and_market,
    market_tag,
)
from pipeline_common.config import load_pipeline_config

PROJECT = "retail_sales"


def model(name: str, folders: list[str], depends_on: list[str], tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "unique_id": f"model.{PROJECT}.{name}", "resource_type": "model", "name": name,
        "package_name": PROJECT, "fqn": [PROJECT, *folders, name],
        "original_file_path": "/".join(["models", *folders, f"{name}.sql"]),
        "config": {"materialized": "table", "meta": {}, "tags": tags or []}, "meta": {}, "tags": tags or [],
        "depends_on": {"nodes": depends_on}, "description": "", "columns": {}, "raw_code": f"select 1 -- {name}",
        "checksum": {"name": "sha256", "checksum": name},
    }


def source(source_name: str, table: str, meta: dict | None = None) -> dict[str, Any]:
    return {
        "unique_id": f"source.{PROJECT}.{source_name}.{table}", "resource_type": "source", "name": table,
        "source_name": source_name, "package_name": PROJECT, "fqn": [PROJECT, source_name, table],
        "original_file_path": f"models/staging/{source_name.lower()}/_sources.yml",
        "config": {"meta": meta or {}}, "meta": meta or {}, "tags": [], "description": "", "columns": {},
    }


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    budget_meta = {"dagster": {"asset_key": ["daily_sales_budget_exchange_ingest"]}}
    sources = [source("UK", "ingest_orders"), source("JP", "ingest_products_sku"),
               source("budget", "daily_sales_budget", budget_meta), source("budget", "exchange_rates", budget_meta)]
    models = [
        model("stg_uk_orders", ["staging", "uk"], [f"source.{PROJECT}.UK.ingest_orders"]),
        model("stg_jp_products_sku", ["staging", "jp"], [f"source.{PROJECT}.JP.ingest_products_sku"]),
        model("stg_budget_daily_sales", ["staging", "budget"], [f"source.{PROJECT}.budget.daily_sales_budget"]),
        model("stg_budget_exchange_rates", ["staging", "budget"], [f"source.{PROJECT}.budget.exchange_rates"]),
        model("int_orders", ["intermediate"], [f"model.{PROJECT}.stg_uk_orders"]),
        model("qi_executive_daily_sales", ["marts", "cross_market"],
              [f"model.{PROJECT}.int_orders", f"model.{PROJECT}.stg_budget_daily_sales",
               f"model.{PROJECT}.stg_budget_exchange_rates"], tags=["executive"]),
        model("uk_commercial_customer_daily", ["marts", "uk"], [f"model.{PROJECT}.stg_uk_orders"]),
    ]
    nodes = {m["unique_id"]: m for m in models}
    parent_map = {uid: list(n["depends_on"]["nodes"]) for uid, n in nodes.items()}
    parent_map.update({s["unique_id"]: [] for s in sources})
    return {
        "metadata": {"adapter_type": "duckdb", "project_name": PROJECT},
        "nodes": nodes, "sources": {s["unique_id"]: s for s in sources},
        "parent_map": parent_map, "child_map": {}, "groups": {}, "exposures": {}, "metrics": {},
        "semantic_models": {}, "saved_queries": {}, "unit_tests": {}, "selectors": {},
    }


@pytest.fixture(scope="module")
def translator() -> WarehouseTranslator:
    return WarehouseTranslator(load_pipeline_config())


def spec(translator: WarehouseTranslator, manifest: dict, name: str) -> dg.AssetSpec:
    return translator.get_asset_spec(manifest, f"model.{PROJECT}.{name}", None)


@pytest.mark.parametrize(
    ("name", "group", "tags"),
    [
        ("stg_uk_orders", "dbt_staging_uk_azure", {"market": "uk"}),
        ("stg_jp_products_sku", "dbt_staging_jp_azure", {"market": "jp"}),
        ("stg_budget_daily_sales", BUDGET_STAGING_GROUP, {}),
        ("int_orders", "dbt_transformations_cross_market", {}),
        ("qi_executive_daily_sales", "dbt_marts_cross_market", {"executive": ""}),
        ("uk_commercial_customer_daily", "dbt_marts_uk_commercial", {"market": "uk"}),
    ],
)
def test_models_get_bare_keys_groups_from_folders_and_market_tags(translator, manifest, name, group, tags):
    asset = spec(translator, manifest, name)
    assert asset.key == dg.AssetKey(name)
    assert asset.group_name == group
    user_tags = {k: v for k, v in asset.tags.items() if not k.startswith("dagster/")}
    assert user_tags == tags


def deps(translator: WarehouseTranslator, manifest: dict, name: str) -> set[dg.AssetKey]:
    return {d.asset_key for d in spec(translator, manifest, name).deps}


def test_sources_map_to_the_ingestion_assets_from_pipeline_yaml(translator, manifest):
    assert deps(translator, manifest, "stg_uk_orders") == {dg.AssetKey("uk_orders_azure")}
    assert deps(translator, manifest, "stg_jp_products_sku") == {dg.AssetKey("jp_products_sku")}
    budget_deps = {d.asset_key for name in ["stg_budget_daily_sales", "stg_budget_exchange_rates"]
                   for d in spec(translator, manifest, name).deps}
    assert budget_deps == {dg.AssetKey("daily_sales_budget_exchange_ingest")}


def test_lineage_runs_from_ingestion_through_staging_to_the_mart(translator, manifest):
    assert deps(translator, manifest, "qi_executive_daily_sales") == {
        dg.AssetKey("int_orders"), dg.AssetKey("stg_budget_daily_sales"), dg.AssetKey("stg_budget_exchange_rates"),
    }
    assert deps(translator, manifest, "int_orders") == {dg.AssetKey("stg_uk_orders")}


def test_a_source_nobody_produces_is_an_error_naming_it(translator):
    with pytest.raises(UnmappedSourceError, match=r"FR\.ingest_orders .*pipeline\.yaml"):
        translator.get_asset_key(source("FR", "ingest_orders"))
    with pytest.raises(UnmappedSourceError, match=r"UK\.ingest_returns"):
        translator.get_asset_key(source("UK", "ingest_returns"))


@pytest.mark.parametrize(
    ("fqn", "expected"),
    [
        ([PROJECT, "staging", "de", "stg_de_orders"], ("staging", "de")),
        ([PROJECT, "intermediate", "int_orders"], ("intermediate", None)),
        ([PROJECT, "marts", "cross_market", "x"], ("marts", "cross_market")),
        ([PROJECT, "loose_model"], (None, None)),
    ],
)
def test_layer_and_market_come_from_the_first_two_folders(fqn, expected):
    assert layer_and_market(fqn) == expected


def test_a_new_market_needs_no_code_change(tmp_path, manifest):
    """Add FR to pipeline.yaml and its models to dbt/models/*/fr: keys, groups, tags and the source's
    upstream asset follow, from config and folders alone."""
    import copy

    import yaml

    from pipeline_common.config import config_path

    raw = yaml.safe_load(config_path().read_text(encoding="utf-8"))
    raw["markets"]["FR"] = {"currency": "EUR"}
    raw["datasets"].append({"market": "FR", "dataset": "ingest_orders", "days_back": 30})
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    fr_translator = WarehouseTranslator(load_pipeline_config(path))
    fr_manifest = copy.deepcopy(manifest)
    fr_source = source("FR", "ingest_orders")
    fr_manifest["sources"][fr_source["unique_id"]] = fr_source
    for node in (model("stg_fr_orders", ["staging", "fr"], [fr_source["unique_id"]]),
                 model("fr_commercial_daily", ["marts", "fr"], [f"model.{PROJECT}.stg_fr_orders"])):
        fr_manifest["nodes"][node["unique_id"]] = node
        fr_manifest["parent_map"][node["unique_id"]] = node["depends_on"]["nodes"]
    fr_manifest["parent_map"][fr_source["unique_id"]] = []

    staging = spec(fr_translator, fr_manifest, "stg_fr_orders")
    assert (staging.key, staging.group_name) == (dg.AssetKey("stg_fr_orders"), "dbt_staging_fr_azure")
    assert staging.tags.get("market") == "fr"
    assert {d.asset_key for d in staging.deps} == {dg.AssetKey("fr_orders_azure")}
    mart = spec(fr_translator, fr_manifest, "fr_commercial_daily")
    assert (mart.group_name, mart.tags.get("market")) == ("dbt_marts_fr_commercial", "fr")


def test_group_names_of_the_folders():
    assert group_name("marts", None) == "dbt_marts_cross_market"
    assert group_name(None, None) is None
    assert market_tag("fr", ["UK", "FR"]) == {"market": "fr"}
    assert market_tag("budget", ["UK"]) == {}
