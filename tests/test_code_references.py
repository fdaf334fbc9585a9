"""From the UI to the code in one click: every asset of the code location carries code references
(the UI's "open source") that point at files that exist, and the first one is the file that does
the asset's work: the legacy script it runs, or the dbt model's .sql.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import deserialize_value, serialize_value

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"


@pytest.fixture(scope="module")
def references() -> dict[str, list]:
    from orchestration.definitions import defs

    found = {}
    for spec in defs.resolve_all_asset_specs():
        value = spec.metadata.get("dagster/code_references")
        found[spec.key.to_user_string()] = list(value.code_references) if value is not None else []
    return found


def _paths(refs: list) -> list[Path]:
    return [Path(ref.file_path).resolve() for ref in refs]


def test_every_asset_has_code_references_to_existing_files(references):
    assert len(references) >= 25  # the whole graph: ingestion, budget, dbt, exports, backup
    missing = sorted(name for name, refs in references.items() if not refs)
    assert not missing, f"assets without code references: {missing}"
    for name, refs in references.items():
        for ref in refs:
            assert isinstance(ref, dg.LocalFileCodeReference), (name, ref)
            path = Path(ref.file_path)
            assert path.is_absolute() and path.is_file(), f"{name}: {ref.file_path} does not exist"
            assert path.resolve().is_relative_to(REPO_ROOT), f"{name}: {path} is outside the repository"
            if ref.line_number is not None:
                assert 1 <= ref.line_number <= len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(
    ("asset", "first_file"),
    [
        ("uk_orders_azure", SCRIPTS / "azure_sync" / "sync_azure.py"),
        ("jp_products_sku", SCRIPTS / "azure_sync" / "sync_azure.py"),
        ("tableau_executive_daily_sales", SCRIPTS / "create_hyper_files" / "duckdb_to_tableau_server.py"),
        ("daily_sales_budget_exchange_ingest", SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"),
        ("stg_uk_orders", REPO_ROOT / "dbt" / "models" / "staging" / "uk" / "stg_uk_orders.sql"),
        ("qi_executive_daily_sales", REPO_ROOT / "dbt" / "models" / "marts" / "cross_market" / "qi_executive_daily_sales.sql"),
    ],
)
def test_first_reference_is_the_file_doing_the_work(references, asset, first_file):
    assert _paths(references[asset])[0] == first_file.resolve()


@pytest.mark.parametrize(
    ("asset", "factory_module", "factory_text"),
    [
        ("uk_orders_azure", "orchestration/ingestion/assets.py", "def build_sync_asset"),
        ("tableau_executive_daily_sales", "orchestration/exports/assets.py", "def build_export_asset"),
        ("daily_sales_budget_exchange_ingest", "orchestration/budget/assets.py", "def build_budget_asset"),
        ("stg_uk_orders", "orchestration/warehouse/assets.py", "@dbt_assets"),
        ("warehouse_backup", "orchestration/maintenance/warehouse_backup.py", "def build_backup_asset"),
    ],
)
def test_factory_built_assets_also_link_to_their_factory(references, asset, factory_module, factory_text):
    """Besides the script or model, the reference to the Dagster code: the line of the asset's
    function, inside the factory that builds it."""
    module = (REPO_ROOT / factory_module).resolve()
    refs = [ref for ref in references[asset] if Path(ref.file_path).resolve() == module]
    assert refs, f"{asset}: no reference to {factory_module} in {[r.file_path for r in references[asset]]}"
    lines = module.read_text(encoding="utf-8").splitlines()
    line = refs[0].line_number
    assert line is not None
    factory_start = next(i for i, text in enumerate(lines, start=1) if factory_text in text)
    # the asset function sits within the factory: after the factory's start, before the next top-level def
    assert line >= factory_start
    assert not any(text.startswith("def ") for text in lines[factory_start : line - 1])


def test_legacy_script_references_are_labelled(references):
    labels = [ref.label for ref in references["uk_orders_azure"]]
    assert any(label and "sync_azure.py" in label for label in labels)


def test_references_survive_serialization_to_the_webserver(references):
    """The UI reads the metadata from a serialized snapshot of the code location."""
    from orchestration.definitions import defs

    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("uk_orders_azure"))
    value = spec.metadata["dagster/code_references"]
    assert deserialize_value(serialize_value(value)) == value


def test_every_staging_model_names_the_macro_and_the_config_entries_it_comes_from():
    """A staging model's .sql is two generated lines calling a macro: its description in the UI says where
    the rest is, and what it names exists (the macro in that file, the dataset and its type in pipeline.yaml)."""
    import re

    from orchestration.definitions import defs
    from pipeline_common.config import load_pipeline_config

    config = load_pipeline_config()
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    seen = set()
    market_models = [sql for market in config.markets
                     for sql in sorted((REPO_ROOT / "dbt" / "models" / "staging" / market.lower()).glob("stg_*.sql"))]
    for sql in market_models:
        call = re.search(r"\{\{ (\w+)\('(\w+)', '(\w+)'\) \}\}", sql.read_text(encoding="utf-8"))
        assert call is not None, f"{sql}: not the generated call of a staging macro"
        macro, market, dataset = call.groups()
        description = specs[sql.stem].description or ""
        named = re.search(r"macro (\w+) \(([\w/.]+)\)", description)
        assert named and named.group(1) == macro, f"{sql.stem}: {description!r} does not name the macro {macro}"
        macro_file = REPO_ROOT / named.group(2)
        assert re.search(rf"{{%-?\s*macro {macro}\(", macro_file.read_text(encoding="utf-8")), (sql.stem, macro_file)
        assert f"datasets ({market}, {dataset})" in description and f"dataset_types.{dataset}" in description, description
        assert (market, dataset) in {(d.market, d.dataset) for d in config.datasets}, sql.stem
        seen.add((market, dataset))
    assert seen == {(d.market, d.dataset) for d in config.datasets}  # every configured dataset has its model
