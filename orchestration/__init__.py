"""The Dagster code location of the daily sales pipeline; `definitions.defs` is its entry point."""
