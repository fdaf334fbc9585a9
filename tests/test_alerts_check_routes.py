"""README claims on check alerts, end to end through a real instance, the real sensor and the local
Slack webhook server: a failed ERROR check (a dbt test, an ingestion check) goes to the
`data_quality` route; a failed WARN check stays in the log unless its route is in `warn_routes`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration.alerts.check_alerts import build_check_alert_sensor
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import config_path, load_pipeline_config
from tests.plugins.slack_server import block_kit_problems


@dg.asset(name="orders_for_routing")
def orders_for_routing() -> None:
    """An asset whose checks fail on purpose."""


@dg.asset_check(asset=orders_for_routing, name="order_ids_are_unique")
def order_ids_are_unique() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata={"duplicates": 3})


@dg.asset_check(asset=orders_for_routing, name="few_cancelled_orders")
def few_cancelled_orders() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"cancelled_share": 0.4})


@dg.asset_check(asset=orders_for_routing, name="orders_have_dates")
def orders_have_dates() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _config(tmp_path: Path, warn_routes: list[str]):
    raw = yaml.safe_load(config_path().read_text(encoding="utf-8"))
    raw["alerts"]["warn_routes"] = warn_routes
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_pipeline_config(path)


def _alert_on_failed_checks(alerts, tmp_path: Path) -> None:
    slack = SlackAlerts(routes=dict(alerts.routes), max_attempts=1)
    sensor = build_check_alert_sensor(alerts, dg.DefaultSensorStatus.RUNNING)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        sensor.evaluate_tick(first)  # places the cursor
        result = dg.materialize(
            [orders_for_routing, order_ids_are_unique, few_cancelled_orders, orders_have_dates], instance=instance
        )
        assert result.success
        tick = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack})
        sensor.evaluate_tick(tick)


@pytest.fixture
def webhooks(slack_server, monkeypatch):
    for route in load_pipeline_config().alerts.routes:
        monkeypatch.setenv(f"SLACK_WEBHOOK_{route.upper()}", slack_server.webhook_url(route))
    return slack_server


def test_a_failed_error_check_goes_to_data_quality_and_warn_stays_in_the_log(webhooks, tmp_path):
    alerts = _config(tmp_path, warn_routes=[]).alerts  # the shipped default
    _alert_on_failed_checks(alerts, tmp_path)
    [alert] = webhooks.for_route("data_quality")
    assert block_kit_problems(alert) == []
    assert "orders_for_routing" in alert["text"] and "order_ids_are_unique" in alert["text"]
    assert "few_cancelled_orders" not in str(alert)
    for route in ("technical", "time_series", "logistics"):
        assert webhooks.for_route(route) == [], route


def test_warn_routes_also_get_warn_failures(webhooks, tmp_path):
    alerts = _config(tmp_path, warn_routes=["data_quality"]).alerts
    _alert_on_failed_checks(alerts, tmp_path)
    sent = webhooks.for_route("data_quality")
    titles = sorted(next(name for name in ("order_ids_are_unique", "few_cancelled_orders") if name in a["text"])
                    for a in sent)
    assert titles == ["few_cancelled_orders", "order_ids_are_unique"]
    assert not any("orders_have_dates" in a["text"] for a in sent)  # a passing check never alerts
