"""Export assets: built from pipeline.yaml, and materialized in-process through Pipes against real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from tableauhyperapi import Connection, HyperProcess, TableName, Telemetry

from orchestration.exports import build_defs
from orchestration.resources import DUCKDB_POOL, RETRY_POLICY, pipes_subprocess_client
from pipeline_common.config import PipelineConfig, config_path, load_pipeline_config
from tests.plugins.tableau_server import PAT_SECRET

RESOURCES = {"pipes_subprocess_client": pipes_subprocess_client()}


def config_with_exports(exports: list[dict]) -> PipelineConfig:
    raw = yaml.safe_load(config_path().read_text(encoding="utf-8"))
    raw["exports"] = exports
    return PipelineConfig.model_validate(raw)


def export_asset(config: PipelineConfig, name: str) -> dg.AssetsDefinition:
    [asset] = [a for a in build_defs(config).assets if a.key == dg.AssetKey(name)]
    return asset


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in event.metadata.items()}


def test_every_configured_export_is_an_asset_with_deps_pool_retry_and_freshness():
    config = load_pipeline_config()
    defs = build_defs(config)
    specs = {spec.key.to_user_string(): (asset, spec) for asset in defs.assets for spec in asset.specs}
    assert set(specs) == {e.asset for e in config.exports} == {
        "tableau_executive_daily_sales", "daily_sales_tableau_export",
    }
    asset, spec = specs["tableau_executive_daily_sales"]
    assert spec.group_name == "export"
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey("qi_executive_daily_sales")]
    assert asset.op.pool == DUCKDB_POOL and asset.op.retry_policy == RETRY_POLICY
    policy = spec.freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert (policy.deadline_cron, policy.timezone) == ("30 7 * * *", "Europe/London")
    assert policy.lower_bound_delta == dt.timedelta(hours=7, minutes=30), "a build counts from midnight"
    assert [d.asset_key for d in specs["daily_sales_tableau_export"][1].deps] == [
        dg.AssetKey("int_orders_summary_daily")
    ]


def test_adding_an_export_is_a_config_edit_only():
    config = config_with_exports([
        {"asset": "tableau_budget_pack", "name": "budget_pack", "tables": ["a", "b"], "upstream": ["a", "b_src"]},
    ])
    spec = export_asset(config, "tableau_budget_pack").specs_by_key[dg.AssetKey("tableau_budget_pack")]
    assert {d.asset_key for d in spec.deps} == {dg.AssetKey("a"), dg.AssetKey("b_src")}


def test_materialize_builds_the_extract_and_reports_metadata(export_warehouse, isolated_env):
    config = config_with_exports([
        {"asset": "tableau_executive_daily_sales", "name": "executive_daily_sales",
         "tables": ["qi_executive_daily_sales"]},
    ])
    result = dg.materialize([export_asset(config, "tableau_executive_daily_sales")], resources=RESOURCES)
    assert result.success
    metadata = materialization(result, "tableau_executive_daily_sales")
    hyper = isolated_env / "exports" / "executive_daily_sales.hyper"
    assert metadata["rows_qi_executive_daily_sales"] == 4
    assert metadata["hyper_size_bytes"] == hyper.stat().st_size
    assert metadata["published"] is False
    assert metadata["hyper_path"] == str(hyper)
    assert "tableau_content_url" not in metadata


def test_materialize_publishes_and_keeps_the_token_out_of_the_run(
    export_warehouse, isolated_env, tableau_server, monkeypatch
):
    for key, value in {**tableau_server.env(), "TABLEAU_PUBLISH_RETRY_SECONDS": "0.05"}.items():
        monkeypatch.setenv(key, value)
    tableau_server.fail_next("publish", 401)
    config = config_with_exports([
        {"asset": "daily_sales_tableau_export", "name": "daily_sales_summary", "tables": ["int_orders_summary_daily"]},
    ])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [export_asset(config, "daily_sales_tableau_export")], resources=RESOURCES, instance=instance
    )
    assert result.success
    metadata = materialization(result, "daily_sales_tableau_export")
    assert metadata["published"] is True and metadata["tableau_content_url"] == "dailysalessummary"
    assert metadata["rows_int_orders_summary_daily"] == 1000
    assert len(tableau_server.published) == 1
    logged = "\n".join(f"{entry.user_message} {entry.dagster_event}" for entry in instance.all_logs(result.run_id))
    assert "signing in again" in logged  # script log lines reach the run through Pipes
    assert PAT_SECRET not in logged


def test_unknown_table_fails_the_asset_without_retries(export_warehouse, isolated_env, tmp_path, monkeypatch):
    exports = [{"asset": "tableau_typo", "name": "typo", "tables": ["qi_exec_daily_sales"]}]
    config = config_with_exports(exports)
    # The script reads the same config file as the code location (its export names are reserved).
    raw = yaml.safe_load(config_path().read_text(encoding="utf-8"))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({**raw, "exports": exports}), encoding="utf-8")
    monkeypatch.setenv("PIPELINE_CONFIG", str(tmp_path / "pipeline.yaml"))
    result = dg.materialize([export_asset(config, "tableau_typo")], resources=RESOURCES, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    assert "rejected bad input (exit 65)" in error.message and "qi_exec_daily_sales" in error.message
    assert failure.step_failure_data.user_failure_data is not None
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert not (isolated_env / "exports" / "typo.hyper").exists()


def test_export_of_the_real_dbt_mart_matches_the_warehouse(built_warehouse, isolated_env, tmp_path, monkeypatch):
    # A copy: the session warehouse is shared read-only.
    warehouse = tmp_path / "analytics.duckdb"
    warehouse.write_bytes(built_warehouse.duckdb_path.read_bytes())
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    config = load_pipeline_config()
    result = dg.materialize([export_asset(config, "tableau_executive_daily_sales")], resources=RESOURCES)
    assert result.success

    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(
            "SELECT order_date, market, net_sales_gbp, budget_gbp, orders FROM qi_executive_daily_sales"
        ).fetchall()
    assert materialization(result, "tableau_executive_daily_sales")["rows_qi_executive_daily_sales"] == len(expected)
    (tmp_path / "hyper").mkdir()
    hyper = isolated_env / "exports" / "executive_daily_sales.hyper"
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(tmp_path / "hyper")}) as hp:
        with Connection(hp.endpoint, str(hyper)) as connection:
            rows = connection.execute_list_query(
                'SELECT order_date, market, net_sales_gbp, budget_gbp, orders FROM "Extract"."Extract"'
            )
            types = {c.name.unescaped: str(c.type) for c in
                     connection.catalog.get_table_definition(TableName("Extract", "Extract")).columns}
    assert types["order_date"] == "DATE" and types["net_sales_gbp"].startswith("NUMERIC(")
    assert types["market"] == "TEXT"
    actual = sorted(
        (dt.date(r[0].year, r[0].month, r[0].day), r[1], r[2], r[3], r[4]) for r in rows
    )
    assert actual == sorted(expected)
    assert len(actual) > 0


@pytest.fixture(autouse=True)
def _no_stray_hyper_logs():
    before = set(Path.cwd().glob("hyperd*.log"))
    yield
    assert set(Path.cwd().glob("hyperd*.log")) == before
