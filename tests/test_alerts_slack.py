"""Slack delivery against a local webhook server: routing, Block Kit, retries, the alerts folder."""

from __future__ import annotations

import json
import logging

import pytest

from orchestration.alerts import blocks
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import DEFAULT_ALERT_ROUTES
from tests.plugins.slack_server import block_kit_problems


def _slack(**overrides) -> SlackAlerts:
    settings = {"routes": DEFAULT_ALERT_ROUTES, "timeout_seconds": 2.0, "max_attempts": 3, "backoff_seconds": 0.05}
    return SlackAlerts(**{**settings, **overrides})


def _alert_lines(data_dir):
    files = sorted((data_dir / "alerts").glob("alerts_*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def hooks(slack_server, monkeypatch):
    for route in DEFAULT_ALERT_ROUTES:
        monkeypatch.setenv(f"SLACK_WEBHOOK_{route.upper()}", slack_server.webhook_url(route))
    return slack_server


def test_each_route_reaches_its_own_webhook_with_valid_block_kit(hooks, isolated_env):
    slack = _slack()
    for route in DEFAULT_ALERT_ROUTES:
        payload = blocks.message(f"{route} alert", "ERROR", summary=blocks.escape("x < y & z"), fields={"Route": route})
        assert slack.send(route, "ERROR", f"{route} alert", payload) == "sent"
    for route in DEFAULT_ALERT_ROUTES:
        received = hooks.for_route(route)
        assert len(received) == 1
        assert received[0]["blocks"][0]["text"]["text"].endswith(f"{route} alert")
        assert block_kit_problems(received[0]) == []
    assert hooks.for_route("technical")[0]["blocks"][1]["text"]["text"] == "x &lt; y &amp; z"
    assert not (isolated_env / "alerts").exists()


def test_oversized_content_is_clipped_to_slack_limits(hooks):
    huge = "Traceback line\n" * 2000
    payload = blocks.message("T" * 400, "ERROR", summary="s" * 5000, fields={f"f{i}": "v" * 3000 for i in range(14)},
                             details=huge, context=["c"] * 15)
    assert block_kit_problems(payload) == []
    assert _slack().send("technical", "ERROR", "big", payload) == "sent"  # the server validates too


def test_server_errors_are_retried_then_delivered(hooks, isolated_env):
    hooks.misbehave(status=500, times=2)
    assert _slack().send("data_quality", "ERROR", "t", blocks.message("t", "ERROR")) == "sent"
    assert len(hooks.for_route("data_quality")) == 3
    assert _alert_lines(isolated_env) == []


def test_persistent_500_is_retried_then_written_to_the_alerts_folder(hooks, isolated_env, caplog):
    hooks.misbehave(status=500)
    payload = blocks.message("warehouse down", "ERROR", summary="details")
    with caplog.at_level(logging.INFO):
        assert _slack().send("technical", "ERROR", "warehouse down", payload) == "filed"
    assert len(hooks.for_route("technical")) == 3
    [line] = _alert_lines(isolated_env)
    assert {k: line[k] for k in ("route", "severity", "title")} == {"route": "technical", "severity": "ERROR", "title": "warehouse down"}
    assert line["payload"] == payload and line["ts"]
    secret = hooks.webhook_url("technical")
    assert secret not in caplog.text and "/services/" not in caplog.text
    assert "HTTP 500" in caplog.text


def test_timeout_is_retried_then_filed(hooks, isolated_env):
    hooks.misbehave(status=200, delay=1.5)
    slack = _slack(timeout_seconds=0.3, max_attempts=2)
    assert slack.send("logistics", "ERROR", "slow", blocks.message("slow", "ERROR")) == "filed"
    assert len(hooks.for_route("logistics")) == 2
    assert [line["title"] for line in _alert_lines(isolated_env)] == ["slow"]


def test_rate_limit_honours_retry_after(hooks):
    hooks.misbehave(status=429, times=1, retry_after="1")
    assert _slack().send("time_series", "ERROR", "t", blocks.message("t", "ERROR")) == "sent"
    first, second = [r.received_at for r in hooks.requests]
    assert second - first >= 0.95  # backoff alone would be ~0.05 s


def test_rejected_payload_is_not_retried_and_is_filed(hooks, isolated_env):
    bad = {"text": "t", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "not allowed"}}]}
    assert _slack().send("technical", "ERROR", "bad", bad) == "filed"
    assert len(hooks.requests) == 1
    assert _alert_lines(isolated_env)[0]["payload"] == bad


def test_without_webhook_alert_goes_to_log_and_file(isolated_env, caplog):
    with caplog.at_level(logging.WARNING):
        assert _slack().send("technical", "ERROR", "no hook", blocks.message("no hook", "ERROR")) == "filed"
    assert "SLACK_WEBHOOK_TECHNICAL is not set" in caplog.text and "no hook" in caplog.text
    assert [line["route"] for line in _alert_lines(isolated_env)] == ["technical"]
