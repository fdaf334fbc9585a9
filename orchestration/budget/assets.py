"""The budget ingest asset `daily_sales_budget_exchange_ingest`: runs the legacy `daily_sales_ingest.py`
once per budget year through Pipes.

By default it refreshes every year touched by the last 30 days, so early January also picks up
late changes to December's budget; only the current year's workbook is required to exist.
"""

import datetime as dt
from typing import Any

import dagster as dg
from pydantic import Field

from orchestration.code_references import legacy_script_reference
from orchestration.pipes_runner import materialization_metadata, run_legacy_script, script_path
from orchestration.resources import RETRY_POLICY
from pipeline_common.config import PipelineConfig, today_in

ASSET_NAME = "daily_sales_budget_exchange_ingest"
GROUP = "budget_ingestion"
INGEST_SCRIPT = "sharepoint_budget/daily_sales_ingest.py"
LOOKBACK_DAYS = 30


class BudgetRunConfig(dg.Config):
    """Launchpad knob to re-ingest particular budget years."""

    years: list[int] | None = Field(
        default=None,
        description="Budget years to ingest; every one must have a workbook. Default: the years touched by "
        f"the last {LOOKBACK_DAYS} days ending today (pipeline.yaml timezone); only the current year's is required.",
    )


def year_plan(today: dt.date, years: list[int] | None) -> list[tuple[int, bool]]:
    """(year, required) pairs in order: explicit years are all required, default ones only this year."""
    if years:
        return [(year, True) for year in sorted(set(years))]
    first = today - dt.timedelta(days=LOOKBACK_DAYS - 1)
    return [(year, year == today.year) for year in range(first.year, today.year + 1)]


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def build_budget_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    timezone = config.timezone

    @dg.asset(
        name=ASSET_NAME,
        group_name=GROUP,
        description=(
            "Daily sales budget and exchange rates from the SharePoint workbook `Daily Sales Budget {YYYY}.xlsx` "
            "(or $LANDING_DIR/sharepoint/) to $DATA_DIR/raw/budget/daily_sales_budget_{YYYY}.csv and "
            "exchange_rates_{YYYY}.csv."
        ),
        kinds={"sharepoint", "csv", "python"},
        retry_policy=RETRY_POLICY,
        metadata=legacy_script_reference(script_path(INGEST_SCRIPT)),
    )
    def daily_sales_budget_exchange_ingest(
        context: dg.AssetExecutionContext,
        config: BudgetRunConfig,
        pipes_subprocess_client: dg.PipesSubprocessClient,
    ) -> dg.MaterializeResult:
        ingested: dict[int, dict[str, Any]] = {}
        skipped: list[int] = []
        for year, required in year_plan(today_in(timezone), config.years):
            args = ["--year", str(year)] + ([] if required else ["--skip-missing"])
            invocation = run_legacy_script(context, pipes_subprocess_client, script_path(INGEST_SCRIPT), args)
            metadata = {k: _plain(v) for k, v in materialization_metadata(invocation).items()}
            if metadata:
                ingested[year] = metadata
            else:  # --skip-missing: no workbook for that past year
                context.log.info(f"no budget workbook for {year}; its earlier outputs are unchanged")
                skipped.append(year)
        return dg.MaterializeResult(metadata=_summary(ingested, skipped))

    return daily_sales_budget_exchange_ingest


def _summary(ingested: dict[int, dict[str, Any]], skipped: list[int]) -> dict[str, Any]:
    if not ingested:
        return {"budget_year": 0, "total_rows": 0, "exchange_rows": 0, "years_skipped": dg.MetadataValue.json(skipped)}
    latest = max(ingested)
    return {
        "budget_year": latest,
        "total_rows": sum(int(m.get("total_rows", 0)) for m in ingested.values()),
        "exchange_rows": sum(int(m.get("exchange_rows", 0)) for m in ingested.values()),
        "years_ingested": dg.MetadataValue.json(sorted(ingested)),
        "years_skipped": dg.MetadataValue.json(sorted(skipped)),
        "rows_by_year": dg.MetadataValue.json({str(y): int(m.get("total_rows", 0)) for y, m in sorted(ingested.items())}),
        "source": str(ingested[latest].get("source", "")),
    }
