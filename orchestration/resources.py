"""Resources shared by every domain, built in one place."""

from __future__ import annotations

import dagster as dg

from orchestration.pipes_runner import LaunchingPipesClient
from pipeline_common.settings import repo_root

RETRY_POLICY = dg.RetryPolicy(
    max_retries=5,
    delay=60,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)
"""Transient failures (network, throttling, locks) retry 60 s, 120 s, 240 s ... with jitter."""

DUCKDB_POOL = "duckdb"
"""Concurrency pool of every asset that opens the DuckDB file (limit 1 in dagster.yaml)."""

DUCKDB_RUN_TAG = "dbt_duckdb"
"""Run tag of every run that writes DuckDB; dagster.yaml lets one such run in progress at a time."""


def pipes_subprocess_client() -> dg.PipesSubprocessClient:
    # A cancelled run must stop the script on Windows too: our launcher, not Popen.wait() + SIGINT.
    return LaunchingPipesClient(cwd=str(repo_root()))


def shared_resources() -> dict[str, object]:
    return {"pipes_subprocess_client": pipes_subprocess_client()}
