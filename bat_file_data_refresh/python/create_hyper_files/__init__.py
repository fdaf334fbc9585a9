"""DuckDB -> Parquet -> Hyper -> Tableau Server export: the CLI script and its helper modules."""
