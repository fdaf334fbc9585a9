"""No webhook URL in anything an alerting run writes: logs, alert files, the Dagster event log and
run storage of the temp DAGSTER_HOME."""

from __future__ import annotations

import logging

import dagster as dg

from orchestration.alerts.run_alerts import build_run_alert_sensors
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import Alerts


@dg.op
def broken_step() -> None:
    raise RuntimeError("source file missing")


@dg.job(executor_def=dg.in_process_executor)
def secret_scan_job():
    broken_step()


def test_webhook_url_never_written(tmp_path, isolated_env, slack_server, monkeypatch, caplog, capfd):
    url = slack_server.webhook_url("technical")
    secret = url.rsplit("/", 1)[-1]
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", url)
    slack_server.misbehave(status=500)  # every attempt fails: logs, retries and the alerts file all happen
    slack = SlackAlerts(routes={"technical": "SLACK_WEBHOOK_TECHNICAL"}, max_attempts=2, backoff_seconds=0.01)
    home = tmp_path / "dagster_home"
    home.mkdir()
    sensor, _ = build_run_alert_sensors(Alerts(), dg.DefaultSensorStatus.RUNNING)
    with caplog.at_level(logging.DEBUG), dg.DagsterInstance.local_temp(str(home)) as instance:
        first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
        sensor.evaluate_tick(first)
        assert not secret_scan_job.execute_in_process(instance=instance, raise_on_error=False).success
        second = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack})
        sensor.evaluate_tick(second)

    assert len(slack_server.for_route("technical")) == 2  # the alert really went out (and failed)
    written = [p for root in (home, isolated_env) for p in root.rglob("*") if p.is_file()]
    assert any(p.name.startswith("alerts_") for p in written)
    assert any(p.suffix == ".db" for p in written)  # run and event storage were written
    for path in written:
        content = path.read_bytes()
        assert secret.encode() not in content and b"/services/" not in content, path
    out, err = capfd.readouterr()
    assert secret not in caplog.text + out + err and "/services/" not in caplog.text + out + err
