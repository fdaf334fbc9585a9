"""The budget asset ingests every year the synced orders reach back to (contract sections 4 and 5).

Classes covered:
- orders spanning N years: every (currency, month) of the synced order lines gets its exchange rate,
  whatever today's 30-day window covers (generated, property-based: `year_plan` over any today,
  earliest order date and set of years already ingested; and end to end through the real sync and
  the real ingest script on generated data across a year boundary);
- a line older than its file (a re-sent line: a January file carrying December's orders): the
  earliest order date comes from the lines, not from the file names (property-based over generated
  Parquet files, with and without column statistics, several row groups, temporary files beside them);
- a year the orders need whose workbook is missing: the step fails at once with exit 65, naming the
  workbook and the orders that need it, writing nothing; a year ingested before whose workbook has
  since gone keeps its outputs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.budget.assets import ASSET_NAME, build_budget_asset, year_plan
from pipeline_common.config import load_pipeline_config
from pipeline_common.order_span import earliest_order_date
from tests.plugins.frozen_clock import frozen_clock
from tests.plugins.sample_data import REPO_ROOT, load_generator

SYNC = REPO_ROOT / "bat_file_data_refresh" / "python" / "azure_sync" / "sync_azure.py"
WINDOW_DAYS = 30  # README/docs: the default budget years are those touched by the last 30 days


# --------------------------------------------------------------------------- the plan, generated

@settings(max_examples=300, deadline=None)
@given(
    today=st.dates(dt.date(2001, 1, 1), dt.date(2099, 12, 31)),
    back=st.integers(0, 4 * 366),
    ingested=st.sets(st.integers(1995, 2100), max_size=8),
)
def test_every_year_from_the_first_order_to_today_is_planned_and_unread_ones_are_required(
    today: dt.date, back: int, ingested: set[int]
) -> None:
    first_order = today - dt.timedelta(days=back)
    plan = year_plan(today, None, first_order, lambda year: year in ingested)
    years = [year for year, _ in plan]
    required = {year for year, needed in plan if needed}
    assert years == sorted(set(years)) and years[-1] == today.year
    window = set(range((today - dt.timedelta(days=WINDOW_DAYS - 1)).year, today.year + 1))
    assert window <= set(years)  # late changes inside the last 30 days are picked up, as before
    for year in range(first_order.year, today.year + 1):
        if year not in ingested:  # its orders have no rates yet: it must be read, and must exist
            assert year in required
        elif year not in window:  # read before and outside the window: kept, not downloaded again
            assert year not in years
    assert today.year in required
    assert min(years) >= min(first_order.year, min(window))
    # without synced orders: the 30-day window alone, only this year required (the behaviour before)
    assert year_plan(today, None, None) == [(year, year == today.year) for year in sorted(window)]


# --------------------------------------------------------------------------- the earliest order date

def _write_orders(path: Path, dates: list[dt.date], row_group: int, statistics: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "order_line_id": pa.array(range(1, len(dates) + 1), pa.int64()),
        "order_date": pa.array(dates, pa.date32()),
    })
    pq.write_table(table, path, row_group_size=row_group, write_statistics=statistics)


orders_file = st.tuples(
    st.sampled_from(["UK", "DE", "IT", "JP"]),
    st.dates(dt.date(2024, 1, 1), dt.date(2027, 12, 31)),  # the file date
    st.lists(st.integers(0, 500), min_size=1, max_size=40),  # each line: days before its file date
    st.integers(1, 16),  # row group size
    st.booleans(),  # column statistics written
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(orders_file, min_size=1, max_size=6), decoy_days=st.integers(1, 900))
def test_earliest_order_date_comes_from_the_lines_not_the_file_names(
    tmp_path_factory: pytest.TempPathFactory, files: list, decoy_days: int
) -> None:
    raw = tmp_path_factory.mktemp("raw")
    expected: dt.date | None = None
    holders: set[str] = set()
    for market, file_date, ages, row_group, statistics in files:
        dates = [file_date - dt.timedelta(days=age) for age in ages]
        name = f"ingest_orders_{file_date:%Y%m%d}.parquet"
        path = raw / market / "ingest_orders" / f"{file_date:%Y}" / name
        if path.exists():
            continue  # one file per (market, date), as the sync writes them
        _write_orders(path, dates, row_group, statistics)
        if expected is None or min(dates) < expected:
            expected, holders = min(dates), {name}
        elif min(dates) == expected:
            holders.add(name)
    # a sync in progress (temporary name) and another dataset hold older dates: neither counts
    oldest = expected - dt.timedelta(days=decoy_days)
    _write_orders(raw / "UK" / "ingest_orders" / f"{oldest:%Y}" / ".ingest_orders_x.parquet.tmp", [oldest], 4, True)
    _write_orders(raw / "UK" / "ingest_returns" / f"{oldest:%Y}" / f"ingest_returns_{oldest:%Y%m%d}.parquet",
                  [oldest], 4, True)
    found = earliest_order_date(raw, ["UK", "DE", "IT", "JP"])
    assert found is not None and found.first_date == expected and found.path.name in holders
    assert earliest_order_date(raw, ["FR"]) is None


# --------------------------------------------------------------------------- end to end on generated data

AS_OF = dt.date(2027, 1, 5)  # orders from 2026-12-27: a year boundary inside the data
DAYS = 10
NOW = dt.datetime(2027, 3, 10, 12, 0, tzinfo=dt.timezone.utc)  # the last 30 days lie in 2027 only


@pytest.fixture
def synced(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """UK orders across the year boundary, generated and synced by the real sync script: (landing, DATA_DIR)."""
    landing = tmp_path / "landing"
    load_generator().generate(landing, AS_OF, DAYS, 40, 11, ["UK"])
    monkeypatch.setenv("LANDING_DIR", str(landing))
    done = subprocess.run(
        [sys.executable, str(SYNC), "--market", "UK", "--dataset", "ingest_orders",
         "--days-back", str(DAYS), "--as-of", AS_OF.isoformat()],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return landing, isolated_env


def materialize() -> dg.ExecuteInProcessResult:
    with frozen_clock(NOW, tick=True):
        return dg.materialize(
            [build_budget_asset(load_pipeline_config())],
            resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
            raise_on_error=False,
        )


def months_without_rate(data: Path) -> list[tuple]:
    raw = data.as_posix() + "/raw"
    with duckdb.connect() as con:
        return con.execute(f"""
            select distinct o.currency, date_trunc('month', o.order_date)::date as month
            from read_parquet('{raw}/*/ingest_orders/*/*.parquet') o
            anti join read_csv('{raw}/budget/exchange_rates_*.csv', header = true, all_varchar = true) fx
              on fx.currency = o.currency and cast(fx.month as date) = date_trunc('month', o.order_date)::date
            order by all""").fetchall()


def test_orders_across_a_year_boundary_get_both_years_rates(synced: tuple[Path, Path]) -> None:
    _, data = synced
    result = materialize()
    assert result.success
    metadata = {k: getattr(v, "value", v) for k, v in
                result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert metadata["years_ingested"] == [2026, 2027]
    assert metadata["orders_from"] == "2026-12-27"
    assert months_without_rate(data) == []  # contract section 5: every order month converts


def test_a_missing_workbook_of_a_year_the_orders_need_fails_with_exit_65_naming_it(
    synced: tuple[Path, Path],
) -> None:
    landing, data = synced
    (landing / "sharepoint" / "Daily Sales Budget 2026.xlsx").unlink()
    result = materialize()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.message
    assert "'Daily Sales Budget 2026.xlsx' not found" in message and "exit 65" in message
    assert "2026-12-27" in message  # the orders that need it
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    assert not list((data / "raw").glob("budget/*.csv"))  # nothing written, whole or not at all


def test_a_year_read_before_keeps_its_outputs_when_its_workbook_has_gone(synced: tuple[Path, Path]) -> None:
    landing, data = synced
    assert materialize().success
    earlier = {p.name: p.read_bytes() for p in (data / "raw" / "budget").glob("*_2026.csv")}
    assert len(earlier) == 2
    (landing / "sharepoint" / "Daily Sales Budget 2026.xlsx").unlink()
    result = materialize()
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["years_ingested"].value == [2027]
    assert {p.name: p.read_bytes() for p in (data / "raw" / "budget").glob("*_2026.csv")} == earlier
    assert months_without_rate(data) == []
