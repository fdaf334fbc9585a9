"""pipeline.yaml validation: errors name the file, the entry and the field; a market is a config edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline_common.config import ConfigError, parse_pipeline_config
from pipeline_common.settings import repo_root

REAL_CONFIG = repo_root() / "pipeline.yaml"


def _write_variant(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(REAL_CONFIG.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_shipped_config_is_valid():
    config = parse_pipeline_config(REAL_CONFIG)
    assert set(config.markets) == {"UK", "DE", "IT", "JP"}
    assert {m: v.currency for m, v in config.markets.items()} == {"UK": "GBP", "DE": "EUR", "IT": "EUR", "JP": "JPY"}
    assert config.asset_name("JP", "ingest_orders") == "jp_orders_azure"
    assert config.asset_name("UK", "ingest_scv") == "uk_scv"


def test_unknown_key_names_file_entry_and_field(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["datasets"][2].update(days_bak=3))
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "datasets[2] (IT/ingest_orders)" in message
    assert "field 'days_bak'" in message and "unknown key" in message


def test_unknown_market_names_entry_and_field(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["datasets"].append({"market": "FR", "dataset": "ingest_orders"}))
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "(FR/ingest_orders), field 'market': unknown market 'FR'" in message


def test_duplicate_dataset_is_an_error(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["datasets"].append({"market": "UK", "dataset": "ingest_orders"}))
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    assert "(UK/ingest_orders), field 'dataset': duplicate" in str(info.value)


def test_bad_value_names_field(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["datasets"][0].update(days_back=0))
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    assert "datasets[0] (UK/ingest_orders), field 'days_back'" in str(info.value)


def test_unknown_column_type_is_an_error(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["dataset_types"]["ingest_orders"]["columns"].update(x="money"))
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    assert "dataset_types.ingest_orders.columns.x, field 'type': Input should be 'integer'" in str(info.value)


def test_adding_a_market_is_a_config_edit(tmp_path, monkeypatch):
    """A new market in pipeline.yaml alone yields its ingestion assets and checks."""
    import dagster as dg

    from orchestration.ingestion import build_defs

    def add_france(raw):
        raw["markets"]["FR"] = {"currency": "EUR"}
        raw["datasets"].append({"market": "FR", "dataset": "ingest_orders", "days_back": 7})

    config = parse_pipeline_config(_write_variant(tmp_path, add_france))
    from orchestration.resources import shared_resources

    defs = dg.Definitions.merge(build_defs(config), dg.Definitions(resources=shared_resources()))
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("fr_orders_azure") in graph.get_all_asset_keys()
    assert graph.get(dg.AssetKey("fr_orders_azure")).group_name == "azure_ingestion_orders"
    assert dg.AssetCheckKey(dg.AssetKey("fr_orders_azure"), "newest_day_has_rows") in graph.asset_check_keys


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw["datasets"][0].update(dataset="../../../outside/evil"),
         "datasets[0] (UK/../../../outside/evil), field 'dataset': '../../../outside/evil' must be a plain identifier"),
        (lambda raw: raw["datasets"][0].update(market="U K"),
         "datasets[0] (U K/ingest_orders), field 'market': 'U K' must be a plain identifier"),
        (lambda raw: raw["markets"].update({"../x": {"currency": "GBP"}}),
         "markets (../x), field 'name': must be a plain identifier"),
        (lambda raw: raw["dataset_types"].update({"a/b": raw["dataset_types"]["ingest_orders"]}),
         "dataset_types (a/b), field 'name': must be a plain identifier"),
        (lambda raw: raw["exports"][0].update(name="../sales"),
         "exports[0] (../sales), field 'name': '../sales' must be a plain identifier"),
        (lambda raw: raw["exports"][0].update(name="sales-pack"),
         "exports[0] (sales-pack), field 'name': 'sales-pack' must be a plain identifier"),
    ],
)
def test_names_that_become_paths_must_be_plain_identifiers(tmp_path, mutate, where):
    path = _write_variant(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(path)
    assert where in str(info.value)
