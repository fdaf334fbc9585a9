"""The dbt models as Dagster assets (one `dbt build`, streamed), and the warehouse domain's Definitions.

Assets made: one per dbt model, named after it (`stg_uk_orders`, `int_orders_summary_daily`,
`qi_executive_daily_sales`, ...), all from the multi-asset `warehouse_dbt_models`; each links
to its .sql under dbt/models/ (code references).

Retries: a failing dbt test or SQL error is permanent (the data or the model must change), so
the step fails at once; only a held DuckDB file lock (another process has the warehouse open)
is retried, a few times with a pause, via RetryRequested.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field
from dagster_dbt import DbtCliInvocation, dbt_assets

from orchestration.resources import DUCKDB_POOL, DUCKDB_RUN_TAG
from orchestration.warehouse import gates
from orchestration.warehouse.columns import with_column_schemas
from orchestration.warehouse.project import warehouse_dbt_project
from orchestration.warehouse.resource import WarehouseDbtCliResource, manifest_path, warehouse_dbt_resource
from orchestration.warehouse.sentinels import build_sentinel_checks
from orchestration.warehouse.translator import WarehouseTranslator
from pipeline_common.config import PipelineConfig
from pipeline_common.settings import duckdb_path
from pipeline_common.warehouse_lock import connect_read_only, is_lock_message

DBT_RESOURCE_KEY = "dbt"
DBT_OP_TAGS = {DUCKDB_RUN_TAG: "true"}
FULL_REBUILD_JOB = "warehouse_full_rebuild_job"
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


class WarehouseRunConfig(dg.Config):
    """Launchpad knob: rebuild every incremental model from all files (the weekly full rebuild does this)."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models in full (dbt build --full-refresh) instead of only what changed.",
    )


def dbt_build_args(run_config: WarehouseRunConfig) -> list[str]:
    # --no-write-json: the results are in the run's event log; rewriting manifest.json and
    # run_results.json on every build costs about 0.4 s (docs/performance.md). Compiled SQL is kept.
    args = ["build", "--no-write-json"]
    return [*args, "--full-refresh"] if run_config.full_refresh else args


def build_dbt_assets(config: PipelineConfig) -> dg.AssetsDefinition:
    manifest = json.loads(manifest_path().read_text(encoding="utf-8"))

    @dbt_assets(
        manifest=manifest_path(),
        project=warehouse_dbt_project(),
        dagster_dbt_translator=WarehouseTranslator(config, code_references=True),
        name="warehouse_dbt_models",
        op_tags=DBT_OP_TAGS,
        pool=DUCKDB_POOL,
    )
    def warehouse_dbt_models(
        context: dg.AssetExecutionContext, config: WarehouseRunConfig, dbt: WarehouseDbtCliResource
    ):
        args = dbt_build_args(config)
        first = dbt.cli(args, context=context, raise_on_error=False)
        outcome = gates.drain(first)
        events, invocations, failures = list(outcome.events), [first], []
        if not first.is_successful() and not outcome.failed:  # no node ran: a held lock, a compile error
            yield from events
            prune_run_targets(first.target_path.parent, context.op_execution_context.op.name)
            raise_for_failure(first)
        if outcome.failed:
            # A market's failure made dbt skip every model downstream of its gates, the other markets'
            # included: build those again, reading the held gates (gates.py, docs/warehouse.md
            # "A market that fails a test holds back only itself").
            failures = [uid for uid in outcome.failed if not gates.is_contained(manifest, uid)]
            built = {context.asset_key_for_output(e.output_name).path[-1] for e in events if isinstance(e, dg.Output)}
            selected = {key.path[-1] for key in context.selected_asset_keys}
            not_built = gates.not_built(manifest, selected, built, outcome.failed)
            gates.create_missing_gates(manifest, not_built, lambda: duckdb.connect(str(duckdb_path())), context.log)
            held = gates.held_back(manifest, outcome.failed)
            again = gates.rebuild_after_gates(manifest, not_built, held)
            if held:
                context.log.error(f"not built, held back by a failure no market gate contains: {', '.join(held)}")
            if again:
                context.log.info(f"building again without the held markets: {', '.join(again)}")
                second = dbt.cli([*args, "--exclude", " ".join(gates.all_models_but(manifest, again))],
                                 context=context, raise_on_error=False)
                events += gates.drain(second).events
                invocations.append(second)
            events = list(gates.annotated_checks(
                events, manifest, first.target_path,
                lambda: connect_read_only(duckdb_path(), gates.READ_TIMEOUT_SECONDS, context.log), context.log))
        # Held until dbt exits, then each model's Output gets its columns and types (columns.py).
        yield from with_column_schemas(context, events)
        prune_run_targets(first.target_path.parent, context.op_execution_context.op.name)
        for invocation in invocations[1:]:
            raise_for_failure(invocation)
        if failures:
            raise_for_failure(first)

    return warehouse_dbt_models


def build_full_rebuild(
    config: PipelineConfig, dbt_models: dg.AssetsDefinition
) -> tuple[UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """The weekly full rebuild (jobs.warehouse_full_rebuild in pipeline.yaml): every dbt model from all files.

    Incremental builds equal full ones by construction (tests/test_warehouse_incremental.py); the weekly
    rebuild is the safety net for what no test foresaw, and resets the bookkeeping tables' history.
    """
    settings = config.jobs.warehouse_full_rebuild
    job = dg.define_asset_job(
        name=FULL_REBUILD_JOB,
        selection=dg.AssetSelection.assets(dbt_models),
        description="Rebuild every dbt model in full (dbt build --full-refresh).",
        tags={DUCKDB_RUN_TAG: "true", "pipeline/scheduled_job": FULL_REBUILD_JOB},
        config={"ops": {dbt_models.op.name: {"config": {"full_refresh": True}}}},
        executor_def=dg.in_process_executor,
    )
    schedule = dg.ScheduleDefinition(
        name=f"{FULL_REBUILD_JOB.removesuffix('_job')}_schedule",
        cron_schedule=settings.cron,
        job=job,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Weekly full rebuild of the warehouse ({settings.cron}, {config.timezone}).",
    )
    return job, schedule


def build_defs(config: PipelineConfig) -> dg.Definitions:
    dbt_models = build_dbt_assets(config)
    job, schedule = build_full_rebuild(config, dbt_models)
    return dg.Definitions(
        assets=[dbt_models],
        asset_checks=build_sentinel_checks(config.alerts),
        jobs=[job],
        schedules=[schedule],
        resources={DBT_RESOURCE_KEY: warehouse_dbt_resource()},
    )
