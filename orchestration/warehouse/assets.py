"""The dbt models as Dagster assets (one `dbt build`, streamed), and the warehouse domain's Definitions.

Assets made: one per dbt model, named after it (`stg_uk_orders`, `int_orders_summary_daily`,
`qi_executive_daily_sales`, ...), all from the multi-asset `warehouse_dbt_models`; each links
to its .sql under dbt/models/ (code references).

Retries: a failing dbt test or SQL error is permanent (the data or the model must change), so
the step fails at once; only a held DuckDB file lock (another process has the warehouse open)
is retried, a few times with a pause, via RetryRequested.
"""

import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliInvocation, dbt_assets

from orchestration.resources import DUCKDB_POOL, DUCKDB_RUN_TAG
from orchestration.warehouse.project import dbt_project, manifest_path
from orchestration.warehouse.resource import WarehouseDbtCliResource, warehouse_dbt_resource
from orchestration.warehouse.translator import WarehouseTranslator
from pipeline_common.config import PipelineConfig
from pipeline_common.warehouse_lock import is_lock_message

DBT_RESOURCE_KEY = "dbt"
DBT_OP_TAGS = {DUCKDB_RUN_TAG: "true"}
KEEP_RUN_TARGETS = 10
LOCK_RETRIES = 3
LOCK_RETRY_SECONDS = 30


def is_transient_dbt_error(message: str) -> bool:
    """dbt quotes DuckDB's error: another process (exporter, a desktop SQL client) holds the file."""
    return is_lock_message(message)


def raise_for_failure(invocation: DbtCliInvocation) -> None:
    """Turn a failed dbt run into a retry (lock held) or a permanent failure (anything else)."""
    if invocation.is_successful():
        return
    message = str(invocation.get_error())
    if is_transient_dbt_error(message):
        raise dg.RetryRequested(max_retries=LOCK_RETRIES, seconds_to_wait=LOCK_RETRY_SECONDS)
    raise dg.Failure(
        description=f"dbt build failed (failed tests or model errors; fix the data or the model): {message}",
        allow_retries=False,
    )


def prune_run_targets(target_root: Path, op_name: str, keep: int = KEEP_RUN_TARGETS) -> list[Path]:
    """dagster-dbt writes a target dir per run; keep the newest few (for debugging), drop the rest."""
    runs = sorted((p for p in target_root.glob(f"{op_name}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    dropped = runs[:-keep] if keep > 0 else runs
    for path in dropped:
        shutil.rmtree(path, ignore_errors=True)
    return dropped


def build_dbt_assets(config: PipelineConfig) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=manifest_path(),
        project=dbt_project,
        dagster_dbt_translator=WarehouseTranslator(config, code_references=True),
        name="warehouse_dbt_models",
        op_tags=DBT_OP_TAGS,
        pool=DUCKDB_POOL,
    )
    def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: WarehouseDbtCliResource):
        invocation = dbt.cli(["build"], context=context, raise_on_error=False)
        yield from invocation.stream()
        prune_run_targets(invocation.target_path.parent, context.op_execution_context.op.name)
        raise_for_failure(invocation)

    return warehouse_dbt_models


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_dbt_assets(config)],
        resources={DBT_RESOURCE_KEY: warehouse_dbt_resource()},
    )
