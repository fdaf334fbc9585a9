"""Asset factory: the Azure -> Parquet sync assets, one per (market, dataset) in pipeline.yaml, made by
one subsettable multi-asset (`azure_sync`) that syncs a run's selected datasets in one Pipes process.

Assets made (names from `dataset_types[].asset_name` in pipeline.yaml): `uk_orders_azure`,
`de_orders_azure`, `it_orders_azure`, `jp_orders_azure` (`{market}_orders_azure`),
`uk_products_sku` ... `jp_products_sku`, `uk_new_names`, `uk_scv`.

The step runs the legacy `sync_batch.py`, which runs, per dataset, exactly the code of
`sync_azure.py` (the script an analyst runs by hand, contract section 3), a few datasets at a time:
one Python start for the run instead of one per dataset. Each dataset is reported as its own
asset with the script's counts as materialization metadata; logs stream into the run. A run that
selects one asset (an arrival run, a manual materialization) syncs that dataset only.
"""

import datetime as dt

import dagster as dg
from pydantic import Field

from orchestration.code_references import legacy_script_reference
from orchestration.ingestion.checks import check_results, check_specs
from orchestration.pipes_runner import script_path, stream_legacy_script
from orchestration.resources import RETRY_POLICY
from pipeline_common.config import Dataset, PipelineConfig

SYNC_SCRIPT = "azure_sync/sync_batch.py"
DATASET_SCRIPT = "azure_sync/sync_azure.py"  # what sync_batch.py runs per dataset


class SyncRunConfig(dg.Config):
    """Launchpad knobs to re-run a missed or bad day without editing code."""

    as_of: str | None = Field(
        default=None, description="Last file date to sync, YYYY-MM-DD (default: today in pipeline.yaml's timezone)."
    )
    days_back: int | None = Field(
        default=None, description="Days of files ending at as_of (default: pipeline.yaml's days_back)."
    )
    force: bool = Field(default=False, description="Re-sync every file in the window, changed or not.")


SYNC_STEP = "azure_sync"
"""The multi-asset's op: the launchpad's `ops:` key for the run config below."""


def sync_arguments(entries: list[Dataset], run_config: SyncRunConfig) -> list[str]:
    """sync_batch.py's command-line arguments for the selected datasets and one run's config."""
    args = ["--datasets", *(f"{entry.market}:{entry.dataset}" for entry in entries)]
    if run_config.as_of:
        try:
            dt.date.fromisoformat(run_config.as_of)
        except ValueError:
            raise dg.Failure(
                description=f"run config as_of={run_config.as_of!r} is not a date (YYYY-MM-DD)",
                allow_retries=False,
            ) from None
        args += ["--as-of", run_config.as_of]
    if run_config.days_back is not None:  # else each dataset's own pipeline.yaml days_back
        args += ["--days-back", str(run_config.days_back)]
    if run_config.force:  # pipeline.yaml's per-dataset `force` is applied by the script itself
        args.append("--force")
    return args


def sync_spec(config: PipelineConfig, entry: Dataset) -> dg.AssetSpec:
    dataset_type = config.dataset_type(entry.dataset)
    window = "the one reference file" if dataset_type.cadence == "reference" else (
        f"{dataset_type.cadence} files of the last {entry.days_back} days"
    )
    return dg.AssetSpec(
        key=config.asset_name(entry.market, entry.dataset),
        group_name=dataset_type.group,
        description=(
            f"{entry.market} `{entry.dataset}` synced from the Azure container (or the local landing "
            f"folder) to Parquet under $DATA_DIR/raw/{entry.market}/{entry.dataset}/: {window}. "
            f"Synced with the run's other selected datasets in one `{SYNC_STEP}` step (sync_batch.py)."
        ),
        kinds={"azure", "parquet", "python"},
        tags={"market": entry.market.lower(), "dataset": entry.dataset},
        metadata=legacy_script_reference(script_path(DATASET_SCRIPT), script_path(SYNC_SCRIPT)),
    )


def build_sync_assets(config: PipelineConfig, datasets: list[Dataset] | None = None) -> dg.AssetsDefinition:
    """The `azure_sync` multi-asset over `datasets` (default: every dataset in pipeline.yaml), with
    their checks (evaluated in the same step, right after the sync)."""
    pipeline_config = config  # the body's `config` parameter is the run config
    datasets = config.datasets if datasets is None else datasets
    entries = {dg.AssetKey(config.asset_name(entry.market, entry.dataset)): entry for entry in datasets}

    @dg.multi_asset(
        name=SYNC_STEP,
        specs=[sync_spec(config, entry) for entry in datasets],
        check_specs=[spec for entry in datasets for spec in check_specs(config, entry)],
        can_subset=True,
        retry_policy=RETRY_POLICY,
    )
    def _sync(context: dg.AssetExecutionContext, config: SyncRunConfig):
        selected = [entry for key, entry in entries.items() if key in context.selected_asset_keys]
        try:
            yield from stream_legacy_script(context, script_path(SYNC_SCRIPT), sync_arguments(selected, config))
        except Exception:  # a dataset failed: still check them all (its source_is_current says why it is late)
            yield from check_results(context, pipeline_config, entries)
            raise
        yield from check_results(context, pipeline_config, entries)

    return _sync


def build_defs(config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(assets=[build_sync_assets(config)])
