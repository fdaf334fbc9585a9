"""The 07:30 deadline alert under a frozen clock, on a real instance and real synced files: one alert naming
each late market and dataset and why, once a day, one "current again" after the fix; and the Tableau
double receives exactly one data quality warning for a late export and its removal on recovery."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo
import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from orchestration.alerts import freshness_alerts as freshness
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import load_pipeline_config
from tests.plugins.slack_server import block_kit_problems

LONDON = ZoneInfo("Europe/London")  # pipeline.yaml timezone
DAY = dt.date(2026, 3, 10)
CONFIG = load_pipeline_config()
EXPORTS = {"tableau_executive_daily_sales": "executive_daily_sales", "daily_sales_tableau_export": "daily_sales_summary"}
MARKETS = ["UK", "DE", "IT", "JP"]


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


def _synced(market: str, day: dt.date, when: dt.datetime) -> None:
    path = Path(os.environ["DATA_DIR"]) / "raw" / market / "ingest_orders" / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": [1]}), path)
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture
def setup(tmp_path, slack_server, monkeypatch, isolated_env):
    monkeypatch.setenv("SLACK_WEBHOOK_LOGISTICS", slack_server.webhook_url("logistics"))
    monkeypatch.setenv("LANDING_DIR", str(isolated_env / "landing"))
    [sensor] = freshness.build_freshness_sensor(CONFIG, dg.DefaultSensorStatus.RUNNING)
    slack = SlackAlerts(routes=dict(CONFIG.alerts.routes), max_attempts=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        state = {"cursor": None}

        def tick(now: dt.datetime) -> None:
            monkeypatch.setattr(freshness, "business_now", lambda: now)
            context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], resources={"slack_alerts": slack})
            sensor.evaluate_tick(context)
            state["cursor"] = context.cursor

        yield instance, tick


def _day_before_is_in(instance, except_market: str | None = None) -> None:
    for market in MARKETS:
        _synced(market, DAY - dt.timedelta(days=2), _at(DAY - dt.timedelta(days=1), 6, 0))
        if market != except_market:
            _synced(market, DAY - dt.timedelta(days=1), _at(DAY, 6, 0))
    for asset in EXPORTS:
        _materialized(instance, asset, _at(DAY, 7, 20))


def test_late_market_alerts_once_names_it_and_recovers(setup, slack_server):
    instance, tick = setup
    _day_before_is_in(instance, except_market="DE")

    tick(_at(DAY, 7, 29))
    assert slack_server.for_route("logistics") == []  # not yet the deadline

    tick(_at(DAY, 7, 30))
    tick(_at(DAY, 7, 45))  # a second evaluation: no new alert
    [alert] = slack_server.for_route("logistics")
    assert block_kit_problems(alert) == []
    assert alert["text"] == "[ERROR] Data not current at 07:30: DE ingest_orders"
    assert "DE ingest_orders: file for 2026-03-09 not arrived (due 06:30)" in str(alert["blocks"])
    assert "UK" not in alert["text"]

    _synced("DE", DAY - dt.timedelta(days=1), _at(DAY, 9, 10))
    tick(_at(DAY, 9, 11))
    assert len(slack_server.for_route("logistics")) == 1, "synced but the exports are not rebuilt yet"
    for asset in EXPORTS:
        _materialized(instance, asset, _at(DAY, 9, 20))
    tick(_at(DAY, 9, 21))
    tick(_at(DAY, 9, 22))
    texts = [m["text"] for m in slack_server.for_route("logistics")]
    assert texts == ["[ERROR] Data not current at 07:30: DE ingest_orders", "[OK] Data current again"]

    tick(_at(DAY + dt.timedelta(days=1), 7, 31))  # next day: DE's next file is missing again
    assert len(slack_server.for_route("logistics")) == 3


def test_current_data_never_alerts(setup, slack_server):
    instance, tick = setup
    _day_before_is_in(instance)
    for hhmm in [(7, 29), (7, 30), (12, 0), (23, 59)]:
        tick(_at(DAY, *hhmm))
    assert slack_server.requests == []


def _tableau_with_an_analysts_warning(tableau_server, monkeypatch, datasource: str) -> str:
    """Tableau configured, every export's data source published, and someone else's warning on one of them."""
    for name, value in tableau_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLEAU_PUBLISH_RETRY_SECONDS", "0")
    for name in EXPORTS.values():
        tableau_server.add_datasource(name)
    someone_elses = tableau_server.datasources[datasource][0]
    tableau_server.dqws[someone_elses] = [{
        "id": "dqw-analyst", "type": "MAINTENANCE", "message": "Budget being revised", "isActive": "true",
        "isSevere": "false", "contentId": someone_elses,
    }]
    return someone_elses


def test_tableau_warning_set_once_and_removed_on_recovery(setup, slack_server, tableau_server, monkeypatch):
    instance, tick = setup
    someone_elses = _tableau_with_an_analysts_warning(tableau_server, monkeypatch, "executive_daily_sales")
    _day_before_is_in(instance, except_market="IT")

    tick(_at(DAY, 7, 29))
    assert tableau_server.calls("dqw_add") == 0, "nothing before the deadline"
    tick(_at(DAY, 7, 30))
    assert tableau_server.calls("dqw_add") == 2, "set at the deadline itself, one per export"
    tick(_at(DAY, 7, 31))
    tick(_at(DAY, 8, 0))
    assert tableau_server.calls("dqw_add") == 2  # one per export, once
    for name in EXPORTS.values():
        ours = [w for w in tableau_server.warnings_on(name) if w["type"] == "STALE"]
        assert len(ours) == 1
        assert "IT ingest_orders: file for 2026-03-09 not arrived (due 06:30)" in ours[0]["message"]
        assert ours[0]["isSevere"] == "true"

    _synced("IT", DAY - dt.timedelta(days=1), _at(DAY, 8, 30))
    for asset in EXPORTS:
        _materialized(instance, asset, _at(DAY, 8, 40))
    tick(_at(DAY, 8, 41))
    tick(_at(DAY, 8, 42))
    # Ours deleted by its id; never the by-content DELETE that would clear the analyst's warning too.
    assert tableau_server.calls("dqw_delete_one") == 2 and tableau_server.calls("dqw_delete") == 0
    assert tableau_server.warnings_on("daily_sales_summary") == []
    kept = tableau_server.warnings_on("executive_daily_sales")
    assert [(w["id"], w["type"], w["message"]) for w in kept] == [("dqw-analyst", "MAINTENANCE", "Budget being revised")]
    secret = tableau_server.env()["TABLEAU_PAT_SECRET"]
    assert all(secret not in str(m) for m in slack_server.for_route("logistics"))


def test_no_tableau_calls_when_unconfigured(setup, tableau_server):
    instance, tick = setup
    _day_before_is_in(instance, except_market="JP")
    tick(_at(DAY, 7, 31))
    assert tableau_server.requests == []


def test_tableau_warning_follows_a_changed_reason(setup, tableau_server, monkeypatch):
    """Class: the pipeline's warning is already on the data source and the reason changes (another market
    late, one of two recovered): the warning is replaced by one with the new reason, never kept stale or
    doubled, and someone else's warning stays."""
    instance, tick = setup
    someone_elses = _tableau_with_an_analysts_warning(tableau_server, monkeypatch, "daily_sales_summary")
    for market in MARKETS:  # the day before yesterday is in everywhere; yesterday only for UK and JP
        _synced(market, DAY - dt.timedelta(days=2), _at(DAY - dt.timedelta(days=1), 6, 0))
    for market in ("UK", "JP"):
        _synced(market, DAY - dt.timedelta(days=1), _at(DAY, 6, 0))
    for asset in EXPORTS:
        _materialized(instance, asset, _at(DAY, 7, 20))

    def ours(name: str) -> list[str]:
        return [w["message"] for w in tableau_server.warnings_on(name) if w["type"] == "STALE"]

    tick(_at(DAY, 7, 30))
    for name in EXPORTS.values():
        [first] = ours(name)
        assert "DE ingest_orders: file for 2026-03-09 not arrived" in first
        assert "IT ingest_orders: file for 2026-03-09 not arrived" in first

    _synced("DE", DAY - dt.timedelta(days=1), _at(DAY, 8, 0))  # DE arrives, IT is still late
    tick(_at(DAY, 8, 1))
    for name in EXPORTS.values():
        [updated] = ours(name)
        assert "IT ingest_orders: file for 2026-03-09 not arrived" in updated
        assert "DE ingest_orders" not in updated, "the warning still gives the old reason"
    kept = [(w["type"], w["message"]) for w in tableau_server.warnings_on("daily_sales_summary") if w["type"] != "STALE"]
    assert kept == [("MAINTENANCE", "Budget being revised")]
    adds = tableau_server.calls("dqw_add")
    tick(_at(DAY, 8, 2))  # the same reason again: nothing is rewritten
    assert tableau_server.calls("dqw_add") == adds
