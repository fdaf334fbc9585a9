"""Ingestion assets: a real in-process materialization through Pipes, metadata and checks asserted."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow.csv as pacsv
import pytest

from orchestration.ingestion.assets import build_defs
from orchestration.resources import shared_resources
from pipeline_common.config import load_pipeline_config
from tests.plugins.sample_data import SAMPLE_AS_OF

ORDERS_PREFIX = Path("UK/raw_data/DWH/Oracle/ingest_orders")


def _definitions() -> dg.Definitions:
    return dg.Definitions.merge(build_defs(load_pipeline_config()), dg.Definitions(resources=shared_resources()))


def _csv_rows(landing: Path, days: int) -> int:
    """Rows in the UK orders files of the window, counted independently of the sync script."""
    total = 0
    for offset in range(days):
        day = SAMPLE_AS_OF - dt.timedelta(days=offset)
        path = landing / ORDERS_PREFIX / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.csv"
        total += pacsv.read_csv(path).num_rows
    return total


def _materialize(selection: str, run_config: dict) -> dg.ExecuteInProcessResult:
    defs = _definitions()
    job = dg.define_asset_job("ingest_test", selection=dg.AssetSelection.assets(selection).without_checks()
                              | dg.AssetSelection.checks_for_assets(selection))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("ingest_test").execute_in_process(run_config=run_config, raise_on_error=False)


def _materializations(result: dg.ExecuteInProcessResult, asset: str) -> list[dg.AssetMaterialization]:
    return [event.event_specific_data.materialization for event in result.get_asset_materialization_events()
            if event.asset_key == dg.AssetKey(asset)]


@pytest.fixture
def landing(sample_landing: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANDING_DIR", str(sample_landing))
    return sample_landing


def test_definitions_build_one_asset_per_configured_dataset():
    graph = _definitions().resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    # contract section 7 names, for the ten datasets of the shipped pipeline.yaml
    assert keys == {
        "uk_orders_azure", "de_orders_azure", "it_orders_azure", "jp_orders_azure",
        "uk_products_sku", "de_products_sku", "it_products_sku", "jp_products_sku", "uk_new_names", "uk_scv",
    }
    assert {m: graph.get(dg.AssetKey(f"{m}_orders_azure")).group_name for m in ["uk", "de", "it", "jp"]} == {
        m: "azure_ingestion_orders" for m in ["uk", "de", "it", "jp"]
    }
    assert graph.get(dg.AssetKey("uk_scv")).group_name == "azure_ingestion_reference"
    assets_def = graph.get(dg.AssetKey("uk_orders_azure")).assets_def
    policy = assets_def.op.retry_policy
    assert (policy.max_retries, policy.delay, policy.backoff, policy.jitter) == (
        5, 60, dg.Backoff.EXPONENTIAL, dg.Jitter.PLUS_MINUS,
    )


def test_orders_asset_materializes_through_pipes_with_metadata_and_checks(landing, isolated_env):
    days = 5
    config = {"ops": {"azure_sync": {"config": {"as_of": SAMPLE_AS_OF.isoformat(), "days_back": days}}}}
    result = _materialize("uk_orders_azure", config)
    assert result.success
    [materialization] = _materializations(result, "uk_orders_azure")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert metadata["files_synced"] == days
    assert metadata["files_skipped"] == 0
    assert metadata["rows_loaded"] == _csv_rows(landing, days)
    assert metadata["newest_file_date"] == SAMPLE_AS_OF.isoformat()
    written = sorted((isolated_env / "raw" / "UK" / "ingest_orders").rglob("*.parquet"))
    assert len(written) == days

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["parquet_schema_matches_contract"].passed
    assert evaluations["newest_day_has_rows"].passed
    assert evaluations["newest_day_has_rows"].metadata["newest_file_date"].value == SAMPLE_AS_OF.isoformat()

    # The same run again: nothing changed, nothing re-synced.
    again = _materialize("uk_orders_azure", config)
    [second] = _materializations(again, "uk_orders_azure")
    assert second.metadata["files_synced"].value == 0
    assert second.metadata["files_skipped"].value == days


def test_schema_check_fails_on_a_parquet_that_breaks_the_contract(landing, isolated_env):
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = {"ops": {"azure_sync": {"config": {"as_of": SAMPLE_AS_OF.isoformat(), "days_back": 1}}}}
    assert _materialize("uk_orders_azure", config).success
    [path] = (isolated_env / "raw" / "UK" / "ingest_orders").rglob("*.parquet")
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("quantity"), "quantity",
                                    table["quantity"].cast(pa.string())), path)

    # The next run finds the file unchanged (nothing re-synced) and checks what is on disk.
    again = _materialize("uk_orders_azure", config)
    evaluations = {e.check_name: e for e in again.get_asset_check_evaluations()}
    evaluation = evaluations["parquet_schema_matches_contract"]
    assert not evaluation.passed
    problems = evaluation.metadata["problems"].value
    assert "column 'quantity' is string, expected integer" in next(iter(problems.values()))
    assert not again.success, "the schema check is blocking: the step fails, downstream would not run"


def test_bad_run_config_date_fails_without_retry(landing):
    config = {"ops": {"azure_sync": {"config": {"as_of": "20-11-2026"}}}}
    result = _materialize("uk_orders_azure", config)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "as_of='20-11-2026' is not a date" in failure.event_specific_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
