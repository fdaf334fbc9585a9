"""The scheduled jobs of contract section 7: cron, timezone, clock changes, what each launches, late ticks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time
from dagster._utils.schedules import cron_string_iterator

from orchestration.definitions import defs
from orchestration.schedules.lateness import late_tick_reason

LONDON = ZoneInfo("Europe/London")

# Contract section 7, written out independently of pipeline.yaml on purpose.
CONTRACT = {
    "ingest_azure_qi_job": ("15:15", "daily"),
    "daily_sales_flow_job": ("15:45", "daily"),
    "uk_morning_refresh_with_backup": ("07:15", "daily"),
    "ingest_scv_job": ("16:00", "1st-3rd"),
}


@pytest.fixture(scope="module")
def repo() -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def _schedule_for(repo: dg.RepositoryDefinition, job_name: str) -> dg.ScheduleDefinition:
    matches = [s for s in repo.schedule_defs if s.job_name == job_name]
    assert len(matches) == 1, f"expected one schedule for {job_name}, found {[s.name for s in matches]}"
    return matches[0]


def _ticks(schedule: dg.ScheduleDefinition, start_local: dt.datetime, count: int) -> list[dt.datetime]:
    iterator = cron_string_iterator(start_local.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    return [next(iterator).astimezone(LONDON) for _ in range(count)]


@pytest.mark.parametrize("job_name", sorted(CONTRACT))
def test_each_contract_job_has_a_running_london_schedule(repo, job_name):
    schedule = _schedule_for(repo, job_name)
    assert schedule.execution_timezone == "Europe/London"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    wall_time, _ = CONTRACT[job_name]
    first = _ticks(schedule, dt.datetime(2026, 6, 10, tzinfo=LONDON), 1)[0]
    assert first.strftime("%H:%M") == wall_time


@pytest.mark.parametrize(
    ("job_name", "start", "days"),
    [
        ("uk_morning_refresh_with_backup", dt.datetime(2026, 3, 27), 4),  # BST from Sun 29 Mar 2026
        ("daily_sales_flow_job", dt.datetime(2026, 10, 23), 4),  # GMT from Sun 25 Oct 2026
        ("ingest_azure_qi_job", dt.datetime(2027, 3, 26), 4),  # BST from Sun 28 Mar 2027
        ("uk_morning_refresh_with_backup", dt.datetime(2027, 10, 29), 4),  # GMT from Sun 31 Oct 2027
    ],
)
def test_daily_ticks_keep_london_wall_time_across_clock_changes(repo, job_name, start, days):
    schedule = _schedule_for(repo, job_name)
    wall_time, _ = CONTRACT[job_name]
    ticks = _ticks(schedule, start.replace(tzinfo=LONDON), days)
    assert [t.date() for t in ticks] == [(start + dt.timedelta(days=i)).date() for i in range(days)]
    assert {t.strftime("%H:%M") for t in ticks} == {wall_time}
    offsets = [t.utcoffset() for t in ticks]
    assert len(set(offsets)) == 2, f"the UTC offset should change once in {ticks}"


def test_scv_ticks_on_the_first_three_days_of_each_month_only(repo):
    schedule = _schedule_for(repo, "ingest_scv_job")
    ticks = _ticks(schedule, dt.datetime(2026, 9, 15, tzinfo=LONDON), 9)
    assert [(t.month, t.day) for t in ticks] == [
        (10, 1), (10, 2), (10, 3), (11, 1), (11, 2), (11, 3), (12, 1), (12, 2), (12, 3)
    ]
    assert {t.strftime("%H:%M") for t in ticks} == {"16:00"}
    # 1-3 Nov 2026 are after the October change: still 16:00 on the wall clock.
    assert ticks[3].utcoffset() == dt.timedelta(0) and ticks[0].utcoffset() == dt.timedelta(hours=1)


def _job_assets(repo: dg.RepositoryDefinition, job_name: str) -> set[str]:
    job = repo.get_job(job_name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


def test_each_job_selects_what_the_contract_says(repo):
    qi = _job_assets(repo, "ingest_azure_qi_job")
    assert {"uk_orders_azure", "de_orders_azure", "it_orders_azure", "jp_orders_azure"} <= qi
    assert {"uk_products_sku", "uk_new_names"} <= qi
    assert "uk_scv" not in qi and "warehouse_backup" not in qi

    flow = _job_assets(repo, "daily_sales_flow_job")
    assert qi <= flow
    assert {"daily_sales_budget_exchange_ingest", "int_orders_summary_daily", "qi_executive_daily_sales",
            "tableau_executive_daily_sales", "daily_sales_tableau_export"} <= flow
    everything = {key.to_user_string() for key in repo.asset_graph.materializable_asset_keys}
    assert flow == everything - {"warehouse_backup"}, "the daily flow builds every asset but the backup"

    morning = _job_assets(repo, "uk_morning_refresh_with_backup")
    assert {"uk_orders_azure", "int_orders_summary_daily", "qi_executive_daily_sales",
            "tableau_executive_daily_sales", "daily_sales_tableau_export", "warehouse_backup"} <= morning
    assert not {"de_orders_azure", "it_orders_azure", "jp_orders_azure", "daily_sales_budget_exchange_ingest"} & morning

    assert _job_assets(repo, "ingest_scv_job") == {"uk_scv"}


def test_jobs_that_open_duckdb_carry_the_single_writer_run_tag(repo):
    """Derived check: a job with any asset in pool duckdb must queue behind other DuckDB runs."""
    for job_name in CONTRACT:
        job = repo.get_job(job_name)
        asset_graph = job.asset_layer.asset_graph
        pools: set[str] = set()
        for key in job.asset_layer.executable_asset_keys:
            pools |= set(asset_graph.get(key).pools or ())
        uses_duckdb = "duckdb" in pools
        assert (job.tags.get("dbt_duckdb") == "true") == uses_duckdb, (job_name, pools, job.tags)


def _evaluate(schedule: dg.ScheduleDefinition, scheduled_local: dt.datetime, now_local: dt.datetime):
    with freeze_time(now_local.astimezone(dt.timezone.utc)):
        context = dg.build_schedule_context(scheduled_execution_time=scheduled_local)
        return schedule.evaluate_tick(context)


def test_on_time_tick_launches_its_job(repo):
    schedule = _schedule_for(repo, "daily_sales_flow_job")
    tick = dt.datetime(2026, 11, 20, 15, 45, tzinfo=LONDON)
    result = _evaluate(schedule, tick, tick + dt.timedelta(seconds=20))
    assert result.skip_message is None
    assert len(result.run_requests) == 1


def test_flow_tick_launched_next_morning_is_skipped_because_the_morning_refresh_replaces_it(repo):
    schedule = _schedule_for(repo, "daily_sales_flow_job")
    tick = dt.datetime(2026, 11, 20, 15, 45, tzinfo=LONDON)
    result = _evaluate(schedule, tick, dt.datetime(2026, 11, 21, 8, 0, tzinfo=LONDON))
    assert not result.run_requests
    assert "uk_morning_refresh_with_backup" in result.skip_message and "skipped daily_sales_flow_job" in result.skip_message


def test_flow_tick_a_few_hours_late_in_the_evening_still_runs(repo):
    schedule = _schedule_for(repo, "daily_sales_flow_job")
    tick = dt.datetime(2026, 11, 20, 15, 45, tzinfo=LONDON)
    result = _evaluate(schedule, tick, dt.datetime(2026, 11, 20, 19, 30, tzinfo=LONDON))
    assert len(result.run_requests) == 1


def test_ingest_tick_missed_together_with_the_flow_is_left_to_the_flow(repo):
    schedule = _schedule_for(repo, "ingest_azure_qi_job")
    tick = dt.datetime(2026, 11, 20, 15, 15, tzinfo=LONDON)
    assert len(_evaluate(schedule, tick, tick + dt.timedelta(minutes=20)).run_requests) == 1
    late = _evaluate(schedule, tick, dt.datetime(2026, 11, 20, 16, 0, tzinfo=LONDON))
    assert not late.run_requests and "daily_sales_flow_job" in late.skip_message


def test_lateness_limit_counts_real_elapsed_time_across_the_clock_change():
    # 01:30 GMT on 29 Mar 2026 + 90 real minutes = 04:00 BST: 90 min late, not 150.
    tick = dt.datetime(2026, 3, 29, 0, 30, tzinfo=LONDON)
    now = tick.astimezone(dt.timezone.utc) + dt.timedelta(minutes=90)
    kwargs = dict(job_name="j", scheduled=tick, now=now, timezone="Europe/London")
    assert late_tick_reason(max_lateness_minutes=100, **kwargs) is None
    reason = late_tick_reason(max_lateness_minutes=80, **kwargs)
    assert reason and "90 min late" in reason and "80 min allowed" in reason
