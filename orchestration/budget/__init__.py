"""SharePoint budget workbook -> CSV ingestion: the `daily_sales_budget_exchange_ingest` asset."""

from orchestration.budget.assets import build_defs

__all__ = ["build_defs"]
