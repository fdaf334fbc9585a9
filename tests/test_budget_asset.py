"""The budget asset materialized in-process: the real script through PipesSubprocessClient on generated data."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.budget.assets import ASSET_NAME, build_budget_asset, year_plan
from pipeline_common.config import load_pipeline_config
from tests.plugins.frozen_clock import frozen_clock
from tests.plugins.sample_data import SAMPLE_AS_OF, load_generator


def materialize(run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    asset = build_budget_asset(load_pipeline_config())
    config = {"ops": {ASSET_NAME: {"config": run_config}}} if run_config is not None else None
    return dg.materialize(
        [asset],
        resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
        run_config=config,
        raise_on_error=False,
    )


def csv_rows(path: Path) -> int:
    return duckdb.connect().execute(f"select count(*) from read_csv('{path.as_posix()}')").fetchone()[0]


def test_default_years_include_last_december_in_january() -> None:
    assert year_plan(dt.date(2027, 1, 10), None) == [(2026, False), (2027, True)]
    assert year_plan(dt.date(2026, 11, 20), None) == [(2026, True)]
    assert year_plan(dt.date(2026, 1, 30), None) == [(2026, True)]  # 30 days back is Jan 1
    assert year_plan(dt.date(2026, 11, 20), [2025, 2024, 2025]) == [(2024, True), (2025, True)]


def test_asset_ingests_the_requested_year_with_metadata(
    sample_landing: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANDING_DIR", str(sample_landing))
    result = materialize({"years": [SAMPLE_AS_OF.year]})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    budget_csv = isolated_env / "raw" / "budget" / f"daily_sales_budget_{SAMPLE_AS_OF.year}.csv"
    exchange_csv = isolated_env / "raw" / "budget" / f"exchange_rates_{SAMPLE_AS_OF.year}.csv"
    assert metadata["budget_year"] == SAMPLE_AS_OF.year
    assert metadata["total_rows"] == csv_rows(budget_csv) > 0
    assert metadata["exchange_rows"] == csv_rows(exchange_csv) == 36
    assert metadata["years_ingested"] == [SAMPLE_AS_OF.year]
    assert metadata["source"].endswith(f"Daily Sales Budget {SAMPLE_AS_OF.year}.xlsx")


@pytest.mark.parametrize(
    ("now", "workbook_years", "ingested", "skipped"),
    [
        # November: the last 30 days lie in this year only
        (dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc), [2026], [2026], []),
        # 10 January: the last 30 days reach into December, whose workbook is gone: skipped, not an error
        (dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.timezone.utc), [2027], [2027], [2026]),
        # 10 January with last year's workbook still there: late December changes are picked up too
        (dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.timezone.utc), [2026, 2027], [2026, 2027], []),
        # 23:30 on New Year's Eve: next year's workbook may already be there, but it is not due yet
        (dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.timezone.utc), [2026, 2027], [2026], []),
    ],
    ids=["november", "january-without-last-year", "january-with-last-year", "new-years-eve"],
)
def test_default_run_ingests_the_years_of_the_last_30_days(
    now: dt.datetime, workbook_years: list[int], ingested: list[int], skipped: list[int],
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    landing = tmp_path / "landing"
    for year in workbook_years:
        load_generator().generate(landing, dt.date(year, 6, 1), 1, 20, 5, ["UK"])
    monkeypatch.setenv("LANDING_DIR", str(landing))
    with frozen_clock(now, tick=True):
        result = materialize()
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["budget_year"].value == max(ingested)
    assert metadata["years_ingested"].value == ingested
    assert metadata["years_skipped"].value == skipped
    budget_dir = isolated_env / "raw" / "budget"
    assert sorted(p.name for p in budget_dir.glob("daily_sales_budget_*.csv")) == [
        f"daily_sales_budget_{year}.csv" for year in ingested
    ]


def test_missing_current_workbook_fails_clearly_without_retry(
    tmp_path: Path, sample_landing: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing / "sharepoint", landing / "sharepoint")
    monkeypatch.setenv("LANDING_DIR", str(landing))
    missing_year = SAMPLE_AS_OF.year + 3
    result = materialize({"years": [SAMPLE_AS_OF.year, missing_year]})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.message
    assert f"Daily Sales Budget {missing_year}.xlsx' not found" in message and "exit 65" in message
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    # The year before it was ingested; the failing year wrote nothing.
    assert (isolated_env / "raw" / "budget" / f"daily_sales_budget_{SAMPLE_AS_OF.year}.csv").is_file()
    assert not (isolated_env / "raw" / "budget" / f"daily_sales_budget_{missing_year}.csv").exists()


def test_asset_is_in_the_budget_group_run_by_the_daily_flow_and_retried_with_backoff() -> None:
    from orchestration.definitions import defs

    key = dg.AssetKey("daily_sales_budget_exchange_ingest")  # contract section 7
    asset = defs.resolve_assets_def(key)
    assert asset.group_names_by_key[key] == "budget_ingestion"  # the group pipeline.yaml's jobs select
    flow = defs.resolve_job_def("daily_sales_flow_job")
    assert key in flow.asset_layer.selected_asset_keys
    # README "Retries": exit 75 is retried by RetryPolicy(max_retries=5, delay=60, EXPONENTIAL, PLUS_MINUS)
    policy = asset.op.retry_policy
    assert (policy.max_retries, policy.delay, policy.backoff, policy.jitter) == (
        5, 60, dg.Backoff.EXPONENTIAL, dg.Jitter.PLUS_MINUS,
    )
    children = defs.resolve_asset_graph().get(key).child_keys
    assert dg.AssetKey("stg_budget_daily_sales") in children
