"""Sentinel control queries on a real DuckDB warehouse, run as asset checks, and the check-alert
sensor routing their failures (ERROR to Slack, WARN to the log) through the local webhook server."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest

from orchestration.alerts.check_alerts import build_check_alert_sensor
from orchestration.warehouse.sentinels import build_sentinel_checks
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import load_pipeline_config
from tests.plugins.slack_server import block_kit_problems

NEWEST = dt.date(2026, 3, 10)  # a Tuesday
MARKETS = {"UK": 10_000.0, "DE": 8_000.0, "IT": 5_000.0, "JP": 3_000.0}
CUT_MARKET, CUT_SALES = "DE", 1_500.0  # 1500 / 8000 = 0.1875 of the usual Tuesday


def _build_warehouse(path, *, drop_day_for: str | None = None, fx_gap: bool = False) -> None:
    """Five weeks of both marts; DE's newest day deliberately cut to 19% of its usual sales."""
    qi, summary = [], []
    for offset in range(35):
        day = NEWEST - dt.timedelta(days=offset)
        for market, base in MARKETS.items():
            if day == NEWEST and market == drop_day_for:
                continue
            sales = CUT_SALES if (day == NEWEST and market == CUT_MARKET) else base + 10 * offset
            qi.append((day, market, sales, base, sales - base, 100, 200))
            gbp = None if (fx_gap and market == "JP" and day.month == NEWEST.month) else sales
            summary.append((day, market, "WEB", 100, 120, 200, sales, "GBP", gbp))
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("""create table qi_executive_daily_sales (order_date date, market varchar, net_sales_gbp decimal(18,2),
                       budget_gbp decimal(18,2), variance_gbp decimal(18,2), orders bigint, units bigint)""")
        con.executemany("insert into qi_executive_daily_sales values (?, ?, ?, ?, ?, ?, ?)", qi)
        con.execute("""create table int_orders_summary_daily (order_date date, market varchar, channel varchar, orders bigint,
                       order_lines bigint, units bigint, net_sales_local decimal(18,2), currency varchar, net_sales_gbp decimal(18,2))""")
        con.executemany("insert into int_orders_summary_daily values (?, ?, ?, ?, ?, ?, ?, ?, ?)", summary)


@pytest.fixture
def warehouse(isolated_env, monkeypatch):
    path = isolated_env / "warehouse" / "analytics.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    return path


@dg.asset(name="qi_executive_daily_sales")
def qi_stub() -> None:
    """Stands in for the dbt model; the test has already written its table."""


@dg.asset(name="int_orders_summary_daily")
def summary_stub() -> None:
    """Stands in for the dbt model; the test has already written its table."""


def _run_checks(instance) -> dict[str, dg.AssetCheckEvaluation]:
    checks = build_sentinel_checks(load_pipeline_config().alerts)
    result = dg.materialize([qi_stub, summary_stub, *checks], instance=instance)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_cut_day_fails_net_sales_drop_with_market_and_numbers(warehouse):
    _build_warehouse(warehouse)
    with dg.DagsterInstance.ephemeral() as instance:
        evaluations = _run_checks(instance)
    assert set(evaluations) == {"net_sales_drop", "market_without_orders", "budget_missing", "fx_rate_missing"}
    drop = evaluations["net_sales_drop"]
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.ERROR
    assert drop.metadata["markets"].value == "DE"
    [row] = drop.metadata["rows"].value
    usual = sum(MARKETS["DE"] + 10 * weeks * 7 for weeks in (1, 2, 3, 4)) / 4  # same weekday, 4 weeks back
    assert row["market"] == "DE" and row["order_date"] == NEWEST.isoformat()
    assert row["net_sales_gbp"] == CUT_SALES and row["trailing_avg_gbp"] == pytest.approx(usual)
    assert row["share_of_average"] == pytest.approx(CUT_SALES / usual, abs=1e-3)
    assert drop.metadata["threshold"].value == 0.5
    for name in ("market_without_orders", "budget_missing", "fx_rate_missing"):
        assert evaluations[name].passed, name


def test_missing_market_day_and_fx_gap_are_reported(warehouse):
    _build_warehouse(warehouse, drop_day_for="IT", fx_gap=True)
    with dg.DagsterInstance.ephemeral() as instance:
        evaluations = _run_checks(instance)
    missing = evaluations["market_without_orders"]
    assert not missing.passed
    assert missing.metadata["rows"].value == [
        {"market": "IT", "newest_day": NEWEST.isoformat(), "last_day_with_orders": (NEWEST - dt.timedelta(days=1)).isoformat()}
    ]
    fx = evaluations["fx_rate_missing"]
    assert not fx.passed and fx.metadata["markets"].value == "JP"
    assert fx.metadata["rows"].value[0]["month"] == NEWEST.strftime("%Y-%m")


def test_failed_sentinels_reach_the_time_series_route_and_warn_stays_in_the_log(warehouse, slack_server, monkeypatch, tmp_path):
    _build_warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as con:  # a budget gap on the newest day: a WARN sentinel
        con.execute("update qi_executive_daily_sales set budget_gbp = 0 where market = 'UK' and order_date = ?", [NEWEST])
    for route in ("time_series", "data_quality"):
        monkeypatch.setenv(f"SLACK_WEBHOOK_{route.upper()}", slack_server.webhook_url(route))
    alerts = load_pipeline_config().alerts
    slack = SlackAlerts(routes=dict(alerts.routes), max_attempts=1)
    sensor = build_check_alert_sensor(alerts, dg.DefaultSensorStatus.RUNNING)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        sensor.evaluate_tick(first)  # places the cursor
        _run_checks(instance)
        context = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack})
        sensor.evaluate_tick(context)
        again = dg.build_sensor_context(instance=instance, cursor=context.cursor, resources={"slack_alerts": slack})
        sensor.evaluate_tick(again)
    [alert] = slack_server.for_route("time_series")
    assert block_kit_problems(alert) == []
    assert "net_sales_drop" in alert["text"] and "qi_executive_daily_sales" in alert["text"]
    texts = str(alert["blocks"])
    assert "DE" in texts and "1500.0" in texts
    assert slack_server.for_route("data_quality") == []  # sentinels are not data_quality's business


def test_sentinels_run_on_the_real_dbt_warehouse(built_warehouse, tmp_path):
    """The shipped SQL against the tables dbt really builds (their columns and types): the clean
    sample passes every sentinel; one fault per sentinel, each in its own market, is reported by
    that sentinel alone, naming that market."""
    import shutil

    from orchestration.warehouse.sentinels import connect_read_only, run_sentinel

    config = load_pipeline_config()
    sentinels = {s.name: s for s in config.alerts.sentinels}
    path = tmp_path / "analytics.duckdb"
    shutil.copy2(built_warehouse.duckdb_path, path)

    def markets_reported() -> dict[str, list[str]]:
        con = connect_read_only(path)
        try:
            return {name: sorted({row["market"] for row in run_sentinel(con, s)}) for name, s in sentinels.items()}
        finally:
            con.close()

    assert markets_reported() == {name: [] for name in sentinels}
    with duckdb.connect(str(path)) as con:
        [(newest,)] = con.execute("select max(order_date) from qi_executive_daily_sales").fetchall()
        # DE: a week earlier sold 100 times the newest day (the sample holds one week: add that day)
        con.execute(
            """insert into qi_executive_daily_sales (order_date, market, net_sales_gbp, budget_gbp, orders, units)
               select order_date - 7, market, net_sales_gbp * 100, budget_gbp, orders, units
               from qi_executive_daily_sales where market = 'DE' and order_date = ?""", [newest])
        con.execute("update qi_executive_daily_sales set orders = 0 where market = 'IT' and order_date = ?", [newest])
        con.execute("update qi_executive_daily_sales set budget_gbp = 0 where market = 'UK' and order_date = ?", [newest])
        con.execute("update int_orders_summary_daily set net_sales_gbp = null where market = 'JP'")
    assert markets_reported() == {
        "net_sales_drop": ["DE"], "market_without_orders": ["IT"], "budget_missing": ["UK"], "fx_rate_missing": ["JP"],
    }


def test_market_without_orders_reaches_its_route_not_only_the_log(warehouse, slack_server, monkeypatch, tmp_path):
    """The issue's case: DE's newest file missing, so DE has no orders on the newest day; the run succeeds,
    and the ERROR sentinel `market_without_orders` still reaches its Slack route (time_series)."""
    _build_warehouse(warehouse, drop_day_for="DE")
    monkeypatch.setenv("SLACK_WEBHOOK_TIME_SERIES", slack_server.webhook_url("time_series"))
    alerts = load_pipeline_config().alerts
    slack = SlackAlerts(routes=dict(alerts.routes), max_attempts=1)
    sensor = build_check_alert_sensor(alerts, dg.DefaultSensorStatus.RUNNING)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        sensor.evaluate_tick(first)
        _run_checks(instance)
        sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack}))
    texts = [m["text"] for m in slack_server.for_route("time_series")]
    assert "[ERROR] Check failed: qi_executive_daily_sales / market_without_orders" in texts
    alert = next(m for m in slack_server.for_route("time_series") if "market_without_orders" in m["text"])
    assert "DE" in str(alert["blocks"])
