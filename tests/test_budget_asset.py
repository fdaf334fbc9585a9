"""The budget asset materialized in-process: the real script through PipesSubprocessClient on generated data."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.budget.assets import ASSET_NAME, GROUP, build_budget_asset, year_plan
from pipeline_common.config import load_pipeline_config, today_in
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


def test_default_run_ingests_this_year_and_skips_a_missing_earlier_year(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = today_in(load_pipeline_config().timezone)
    landing = tmp_path / "landing"
    load_generator().generate(landing, today, 1, 50, 5, ["UK"])  # this year's workbook only
    monkeypatch.setenv("LANDING_DIR", str(landing))
    result = materialize()
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    plan = year_plan(today, None)
    assert metadata["budget_year"].value == today.year
    assert metadata["years_ingested"].value == [today.year]
    assert metadata["years_skipped"].value == [y for y, required in plan if not required]
    assert (isolated_env / "raw" / "budget" / f"daily_sales_budget_{today.year}.csv").is_file()


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


def test_asset_is_in_the_budget_group_with_a_retry_policy() -> None:
    from orchestration.definitions import defs

    asset = defs.resolve_assets_def(ASSET_NAME)
    assert asset.group_names_by_key[dg.AssetKey(ASSET_NAME)] == GROUP
    assert asset.op.retry_policy is not None
    children = defs.resolve_asset_graph().get(dg.AssetKey(ASSET_NAME)).child_keys
    assert dg.AssetKey("stg_budget_daily_sales") in children
