"""Export freshness: stale at 07:31 when last refreshed yesterday, alerted once a day, then recovered."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from orchestration.alerts import freshness
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import load_pipeline_config
from tests.plugins.slack_server import block_kit_problems

LONDON = freshness.LONDON
DAY = dt.date(2026, 3, 10)
EXPORT = "tableau_executive_daily_sales"
OTHER_EXPORT = "daily_sales_tableau_export"


def _at(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=LONDON)


def _materialized(instance, asset: str, when: dt.datetime) -> None:
    """A real materialization event in the instance's event log, stamped `when`."""
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset)),
        job_name=RUNLESS_JOB_NAME,
    )
    instance.report_dagster_event(event, run_id=RUNLESS_RUN_ID, timestamp=when.timestamp())


@pytest.fixture
def setup(tmp_path, slack_server, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_LOGISTICS", slack_server.webhook_url("logistics"))
    config = load_pipeline_config()
    [sensor] = freshness.build_freshness_sensor(config, dg.DefaultSensorStatus.RUNNING)
    slack = SlackAlerts(routes=dict(config.alerts.routes), max_attempts=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        state = {"cursor": None}

        def tick(now: dt.datetime) -> None:
            monkeypatch.setattr(freshness, "london_now", lambda: now)
            context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], resources={"slack_alerts": slack})
            sensor.evaluate_tick(context)
            state["cursor"] = context.cursor

        yield instance, tick


def test_stale_export_alerts_once_then_recovers(setup, slack_server):
    instance, tick = setup
    _materialized(instance, EXPORT, _at(DAY - dt.timedelta(days=1), 15, 50))  # yesterday's 15:45 run
    _materialized(instance, OTHER_EXPORT, _at(DAY, 7, 20))  # refreshed by this morning's job

    tick(_at(DAY, 7, 29))
    assert slack_server.for_route("logistics") == []  # not yet the deadline

    tick(_at(DAY, 7, 31))
    tick(_at(DAY, 7, 45))  # a second evaluation: no new alert
    [alert] = slack_server.for_route("logistics")
    assert block_kit_problems(alert) == []
    assert alert["text"] == f"[ERROR] Export not fresh: {EXPORT}"
    assert "2026-03-09 15:50" in str(alert["blocks"])

    _materialized(instance, EXPORT, _at(DAY, 8, 2))
    tick(_at(DAY, 8, 3))
    tick(_at(DAY, 8, 4))
    messages = slack_server.for_route("logistics")
    assert [m["text"] for m in messages] == [
        f"[ERROR] Export not fresh: {EXPORT}",
        f"[OK] Export fresh again: {EXPORT}",
    ]


def test_stale_again_the_next_day_alerts_again(setup, slack_server):
    instance, tick = setup
    tick(_at(DAY, 7, 31))  # never materialized: both stale
    _materialized(instance, OTHER_EXPORT, _at(DAY + dt.timedelta(days=1), 7, 20))
    tick(_at(DAY + dt.timedelta(days=1), 7, 31))  # EXPORT still stale the next day; OTHER recovered
    texts = [m["text"] for m in slack_server.for_route("logistics")]
    assert texts.count(f"[ERROR] Export not fresh: {EXPORT}") == 2
    assert texts.count(f"[ERROR] Export not fresh: {OTHER_EXPORT}") == 1
    assert texts.count(f"[OK] Export fresh again: {OTHER_EXPORT}") == 1
