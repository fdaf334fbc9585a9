"""The budget ingest asset `daily_sales_budget_exchange_ingest`: runs the legacy `daily_sales_ingest.py`
once per budget year through Pipes.

By default it ingests:
- every year touched by the last 30 days, so early January also picks up late changes to December's
  budget (only the current year's workbook is required to exist);
- every year the synced orders reach back to (pipeline_common.order_span: the earliest `order_date`
  in `$DATA_DIR/raw/*/ingest_orders/`) whose budget was never ingested: their lines need that year's
  exchange rates (contract section 5), so a missing workbook for such a year fails the step at once
  (exit 65) naming the workbook and the orders that need it. A year already ingested and outside
  the 30 days keeps its outputs and is not read again (run config `years` re-reads it).
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import Field

from orchestration.code_references import legacy_script_reference
from orchestration.pipes_runner import materialization_metadata, run_legacy_script, script_path
from orchestration.resources import RETRY_POLICY
from pipeline_common.budget_record import output_sizes
from pipeline_common.config import PipelineConfig, today_in
from pipeline_common.order_span import OrdersStart, earliest_order_date
from pipeline_common.settings import raw_dir

ASSET_NAME = "daily_sales_budget_exchange_ingest"
GROUP = "budget_ingestion"
INGEST_SCRIPT = "sharepoint_budget/daily_sales_ingest.py"
LOOKBACK_DAYS = 30


class BudgetRunConfig(dg.Config):
    """Launchpad knob to re-ingest particular budget years."""

    years: list[int] | None = Field(
        default=None,
        description="Budget years to ingest; every one must have a workbook. Default: the years touched by "
        f"the last {LOOKBACK_DAYS} days ending today (pipeline.yaml timezone), only the current year's required; "
        "plus every year the synced orders reach back to whose budget was never ingested (required).",
    )


def year_plan(
    today: dt.date,
    years: list[int] | None,
    orders_from: dt.date | None = None,
    ingested: Callable[[int], bool] = lambda year: False,
) -> list[tuple[int, bool]]:
    """(year, required) pairs in order.

    Explicit years are all required. By default: the years of the last LOOKBACK_DAYS days (only this
    year required), and every year from `orders_from` (the earliest synced order date) on whose
    budget was never `ingested` (required: its orders need its exchange rates).
    """
    if years:
        return [(year, True) for year in sorted(set(years))]
    window_start = (today - dt.timedelta(days=LOOKBACK_DAYS - 1)).year
    needed = set(range(orders_from.year, today.year + 1)) if orders_from is not None else set()
    plan = []
    for year in range(min(window_start, *needed) if needed else window_start, today.year + 1):
        if year >= window_start:
            plan.append((year, year == today.year or (year in needed and not ingested(year))))
        elif not ingested(year):
            plan.append((year, True))
    return plan


def budget_ingested(year: int) -> bool:
    """Both outputs of that year's budget ingest are there (pipeline_common.budget_record)."""
    return output_sizes(year) is not None


def _needed_by_orders(failure: dg.Failure, year: int, start: OrdersStart | None) -> dg.Failure:
    """The script's failure, saying why the year was required when the synced orders need it."""
    if start is None or year < start.first_date.year:
        return failure
    why = (f"budget {year} is needed: the synced orders reach back to {start.first_date} "
           f"({start.path.name}) and their lines convert at that year's exchange rates. ")
    return dg.Failure(description=why + (failure.description or ""), metadata=failure.metadata,
                      allow_retries=False)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def build_budget_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    timezone = config.timezone
    markets = config.markets

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
        today = today_in(timezone)
        start = earliest_order_date(raw_dir(), list(markets)) if not config.years else None
        plan = year_plan(today, config.years, start.first_date if start else None, budget_ingested)
        if start is not None:
            context.log.info(f"the synced orders reach back to {start.first_date} ({start.path.name}); "
                             f"budget years {[year for year, _ in plan]}")
        for year, required in plan:
            args = ["--year", str(year)] + ([] if required else ["--skip-missing"])
            try:
                invocation = run_legacy_script(context, pipes_subprocess_client, script_path(INGEST_SCRIPT), args)
            except dg.Failure as exc:
                raise _needed_by_orders(exc, year, start) from None
            metadata = {k: _plain(v) for k, v in materialization_metadata(invocation).items()}
            if metadata:
                ingested[year] = metadata
            else:  # --skip-missing: no workbook for that past year
                context.log.info(f"no budget workbook for {year}; its earlier outputs are unchanged")
                skipped.append(year)
        summary = _summary(ingested, skipped)
        if start is not None:
            summary["orders_from"] = start.first_date.isoformat()
        return dg.MaterializeResult(metadata=summary)

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
