"""Azure Blob -> Parquet ingestion: one asset per configured (market, dataset)."""

from orchestration.ingestion.assets import build_defs

__all__ = ["build_defs"]
