"""Asset factory: each configured export runs duckdb_to_tableau_server.py through Dagster Pipes.

Assets made (one per `exports[]` entry of pipeline.yaml, named by its `asset`):
`tableau_executive_daily_sales`, `daily_sales_tableau_export`.
"""

import dagster as dg

from orchestration.code_references import legacy_script_reference
from orchestration.exports.checks import build_export_check
from orchestration.exports.freshness_policy import export_freshness_policy
from orchestration.pipes_runner import materialization_metadata, run_legacy_script, script_path
from orchestration.resources import DUCKDB_POOL, RETRY_POLICY
from pipeline_common.config import Export, PipelineConfig

EXPORT_GROUP = "export"
EXPORT_SCRIPT = "create_hyper_files/duckdb_to_tableau_server.py"


def export_script_args(export: Export) -> list[str]:
    # No flag grants the reserved name: the script accepts it because its Pipes context names this asset.
    return ["--tables", *export.tables, "--name", export.name]


def build_export_asset(config: PipelineConfig, export: Export) -> dg.AssetsDefinition:
    """One asset per extract; it waits for its upstream assets (dbt models are keyed by model name)."""

    @dg.asset(
        name=export.asset,
        group_name=EXPORT_GROUP,
        deps=[dg.AssetKey(upstream) for upstream in export.upstream_assets],
        pool=DUCKDB_POOL,
        retry_policy=RETRY_POLICY,
        freshness_policy=export_freshness_policy(config),
        kinds={"tableau", "hyper"},
        description=f"Tableau extract `{export.name}.hyper` of {', '.join(export.tables)}, published (Overwrite).",
        metadata={
            "export_name": export.name,
            "tables": ", ".join(export.tables),
            **legacy_script_reference(script_path(EXPORT_SCRIPT)),
        },
    )
    def _export(
        context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient
    ) -> dg.MaterializeResult:
        invocation = run_legacy_script(
            context, pipes_subprocess_client, script_path(EXPORT_SCRIPT), export_script_args(export)
        )
        return dg.MaterializeResult(metadata=materialization_metadata(invocation))

    return _export


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_export_asset(config, export) for export in config.exports],
        asset_checks=[build_export_check(config, export) for export in config.exports],
    )
