"""Development tools and benchmarks: dbt staging generator, README lineage, Azurite set-up, benchmarks."""
