"""Azure Blob (or landing folder) -> Parquet sync: `sync_azure.py` (one dataset), `sync_batch.py` (several)."""
