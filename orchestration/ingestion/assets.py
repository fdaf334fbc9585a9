"""Asset factory: one Azure -> Parquet sync asset per (market, dataset) in pipeline.yaml, run through Pipes.

Assets made (names from `dataset_types[].asset_name` in pipeline.yaml): `uk_orders_azure`,
`de_orders_azure`, `it_orders_azure`, `jp_orders_azure` (`{market}_orders_azure`),
`uk_products_sku` ... `jp_products_sku`, `uk_new_names`, `uk_scv`.

Each asset shells out to the legacy `sync_azure.py` (the same script an analyst can run by
hand), so logs stream into the run and the script's counts become materialization metadata.
"""

import datetime as dt

import dagster as dg
from pydantic import Field

from orchestration.code_references import legacy_script_reference
from orchestration.ingestion.checks import build_checks
from orchestration.pipes_runner import run_legacy_script, script_path
from orchestration.resources import RETRY_POLICY
from pipeline_common.config import Dataset, PipelineConfig

SYNC_SCRIPT = "azure_sync/sync_azure.py"


class SyncRunConfig(dg.Config):
    """Launchpad knobs to re-run a missed or bad day without editing code."""

    as_of: str | None = Field(
        default=None, description="Last file date to sync, YYYY-MM-DD (default: today in pipeline.yaml's timezone)."
    )
    days_back: int | None = Field(
        default=None, description="Days of files ending at as_of (default: pipeline.yaml's days_back)."
    )
    force: bool = Field(default=False, description="Re-sync every file in the window, changed or not.")


def sync_arguments(entry: Dataset, run_config: SyncRunConfig) -> list[str]:
    """The sync script's command-line arguments for one dataset and one run's config."""
    args = ["--market", entry.market, "--dataset", entry.dataset]
    if run_config.as_of:
        try:
            dt.date.fromisoformat(run_config.as_of)
        except ValueError:
            raise dg.Failure(
                description=f"run config as_of={run_config.as_of!r} is not a date (YYYY-MM-DD)",
                allow_retries=False,
            ) from None
        args += ["--as-of", run_config.as_of]
    days_back = run_config.days_back if run_config.days_back is not None else entry.days_back
    args += ["--days-back", str(days_back)]
    if run_config.force or entry.force:
        args.append("--force")
    return args


def build_sync_asset(config: PipelineConfig, entry: Dataset) -> dg.AssetsDefinition:
    dataset_type = config.dataset_type(entry.dataset)
    name = config.asset_name(entry.market, entry.dataset)
    window = "the one reference file" if dataset_type.cadence == "reference" else (
        f"{dataset_type.cadence} files of the last {entry.days_back} days"
    )

    @dg.asset(
        name=name,
        group_name=dataset_type.group,
        description=(
            f"{entry.market} `{entry.dataset}` synced from the Azure container (or the local landing "
            f"folder) to Parquet under $DATA_DIR/raw/{entry.market}/{entry.dataset}/: {window}."
        ),
        kinds={"azure", "parquet", "python"},
        tags={"market": entry.market.lower(), "dataset": entry.dataset},
        retry_policy=RETRY_POLICY,
        metadata=legacy_script_reference(script_path(SYNC_SCRIPT)),
    )
    def _sync(
        context: dg.AssetExecutionContext,
        config: SyncRunConfig,
        pipes_subprocess_client: dg.PipesSubprocessClient,
    ) -> dg.MaterializeResult:
        invocation = run_legacy_script(
            context, pipes_subprocess_client, script_path(SYNC_SCRIPT), sync_arguments(entry, config)
        )
        return invocation.get_materialize_result()

    return _sync


def build_defs(config: PipelineConfig) -> dg.Definitions:
    assets = [build_sync_asset(config, entry) for entry in config.datasets]
    checks = [check for entry in config.datasets for check in build_checks(config, entry)]
    return dg.Definitions(assets=assets, asset_checks=checks)
