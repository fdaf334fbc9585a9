"""Downtime across tick times, with Dagster's real scheduler loop and frozen clocks.

The daemon is "stopped" between two scheduler iterations; the next iteration launches the
most recent missed tick of each schedule exactly once, after the late-tick rule.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._scheduler.scheduler import launch_scheduled_runs

REPO = Path(__file__).resolve().parents[1]
LONDON = ZoneInfo("Europe/London")
SCHEDULED_JOBS = {"ingest_azure_qi_job", "daily_sales_flow_job", "uk_morning_refresh_with_backup", "ingest_scv_job"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def scheduler(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # queued coordinator: runs are created, not executed
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # In process, so the schedule functions see the frozen clock too.
    origin = LoadableTargetOrigin(module_name="orchestration.definitions", working_directory=str(REPO))
    target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin, location_name="test"))
    with dg.DagsterInstance.get() as instance:
        with create_test_daemon_workspace_context(target, instance) as context:
            iteration_times: dict = {}

            def tick(local: dt.datetime) -> None:
                now = local.replace(tzinfo=LONDON).astimezone(dt.timezone.utc)
                with freeze_time(now):
                    list(launch_scheduled_runs(context, logging.getLogger("test"), now, iteration_times))

            yield instance, tick


def _runs(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """(job, scheduled tick) of each run the scheduler created, oldest first."""
    runs = [r for r in instance.get_runs() if r.job_name in SCHEDULED_JOBS]
    return sorted((r.job_name, r.tags.get(".dagster/scheduled_execution_time", "")[:16]) for r in runs)


def test_restart_after_an_evening_outage_runs_the_missed_flow_once(scheduler):
    instance, tick = scheduler
    tick(dt.datetime(2026, 11, 20, 15, 0))  # daemon up, nothing due
    assert _runs(instance) == []
    # Daemon down 15:00-16:30: the 15:15 ingest and 15:45 flow ticks are missed.
    tick(dt.datetime(2026, 11, 20, 16, 30))
    tick(dt.datetime(2026, 11, 20, 16, 31))
    tick(dt.datetime(2026, 11, 20, 16, 40))
    runs = _runs(instance)
    assert [job for job, _ in runs] == ["daily_sales_flow_job"], runs  # ingest is left to the flow
    assert runs[0][1].startswith("2026-11-20T15:45")


def test_overnight_outage_runs_only_the_morning_refresh(scheduler):
    instance, tick = scheduler
    tick(dt.datetime(2026, 11, 20, 15, 0))
    tick(dt.datetime(2026, 11, 21, 8, 0))  # back next morning: 15:15, 15:45 and 07:15 were missed
    tick(dt.datetime(2026, 11, 21, 8, 1))
    runs = _runs(instance)
    assert [job for job, _ in runs] == ["uk_morning_refresh_with_backup"], runs
    assert runs[0][1].startswith("2026-11-21T07:15")
    # The skipped ticks say why.
    skipped = [
        tick_.skip_reason
        for state in instance.all_instigator_state()
        for tick_ in instance.get_ticks(state.instigator_origin_id, state.selector_id)
        if tick_.skip_reason
    ]
    assert any("daily_sales_flow_job" in reason and "uk_morning_refresh_with_backup" in reason for reason in skipped)


def test_two_missed_days_launch_the_latest_tick_only(scheduler):
    instance, tick = scheduler
    tick(dt.datetime(2026, 11, 18, 15, 0))
    tick(dt.datetime(2026, 11, 20, 16, 0))  # two 15:45 ticks missed; the latest is 15 min late
    tick(dt.datetime(2026, 11, 20, 16, 5))
    runs = _runs(instance)
    assert [job for job, _ in runs] == ["daily_sales_flow_job"], runs
    assert runs[0][1].startswith("2026-11-20T15:45")
