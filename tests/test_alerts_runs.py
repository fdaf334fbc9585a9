"""Run failure and recovery alerts: real runs on a temp Dagster instance, the sensors evaluated
against that instance, messages received by the local Slack webhook server."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.storage.tags import MAX_RETRIES_TAG, PARENT_RUN_ID_TAG, RETRY_NUMBER_TAG, ROOT_RUN_ID_TAG

from orchestration.alerts.run_alerts import build_run_alert_sensors
from orchestration.alerts.slack import SlackAlerts
from pipeline_common.config import Alerts
from tests.plugins.slack_server import block_kit_problems

SHOULD_FAIL = {"value": True}


@dg.op(retry_policy=dg.RetryPolicy(max_retries=1))
def flaky_step() -> None:
    if SHOULD_FAIL["value"]:
        raise RuntimeError("warehouse file is locked\nsecond line of detail\nthird")


@dg.job(executor_def=dg.in_process_executor)
def tiny_alert_job():
    flaky_step()


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home), overrides={"run_retries": {"enabled": True}}) as inst:
        yield inst


@pytest.fixture
def slack(slack_server, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", slack_server.webhook_url("technical"))
    monkeypatch.setenv("DAGSTER_UI_BASE_URL", "http://dagster.example.test:3000/")
    return SlackAlerts(routes={"technical": "SLACK_WEBHOOK_TECHNICAL"}, max_attempts=2, backoff_seconds=0.01)


class Sensors:
    """Evaluates the failure and recovery sensors the way the daemon does, keeping their cursors."""

    def __init__(self, instance, slack):
        self.instance, self.slack = instance, slack
        self.defs = {s.name: s for s in build_run_alert_sensors(Alerts(), dg.DefaultSensorStatus.RUNNING)}
        self.cursors: dict[str, str | None] = {name: None for name in self.defs}

    def tick(self) -> None:
        for name, sensor in self.defs.items():
            context = dg.build_sensor_context(
                instance=self.instance, cursor=self.cursors[name], resources={"slack_alerts": self.slack}
            )
            sensor.evaluate_tick(context)
            self.cursors[name] = context.cursor


def all_text(payload) -> str:
    """Every text of a Block Kit payload, joined: what a reader of the Slack message sees."""
    if isinstance(payload, dict):
        return "\n".join(all_text(v) if k != "text" or not isinstance(v, str) else v for k, v in payload.items())
    if isinstance(payload, list):
        return "\n".join(all_text(v) for v in payload)
    return ""


def _run(instance, fail: bool, tags=None) -> dg.ExecuteInProcessResult:
    SHOULD_FAIL["value"] = fail
    return tiny_alert_job.execute_in_process(instance=instance, raise_on_error=False, tags=tags or {})


def test_failed_run_alerts_once_and_success_sends_recovery(instance, slack, slack_server):
    sensors = Sensors(instance, slack)
    sensors.tick()  # first tick only places the cursors, as on a fresh install
    failed = _run(instance, fail=True)
    assert not failed.success
    sensors.tick()
    sensors.tick()  # a second evaluation must not repeat the alert
    [alert] = slack_server.for_route("technical")
    assert block_kit_problems(alert) == []
    text = all_text(alert)
    assert "Run failed: tiny_alert_job" in alert["blocks"][0]["text"]["text"]
    assert "flaky_step" in text and "warehouse file is locked" in text and "second line of detail" in text
    assert f"http://dagster.example.test:3000/runs/{failed.run_id}" in text
    assert "*Attempt*\n1" in text
    assert "GMT" in text or "BST" in text  # start time shown in Europe/London

    ok = _run(instance, fail=False)
    assert ok.success
    sensors.tick()
    sensors.tick()
    messages = slack_server.for_route("technical")
    assert len(messages) == 2
    assert messages[1]["blocks"][0]["text"]["text"].endswith("Recovered: tiny_alert_job")
    assert ok.run_id in all_text(messages[1]) and failed.run_id in all_text(messages[1])

    _run(instance, fail=False)  # success after success: nothing to say
    sensors.tick()
    assert len(slack_server.for_route("technical")) == 2


def test_run_that_will_be_retried_is_not_alerted_only_its_final_attempt(instance, slack, slack_server):
    sensors = Sensors(instance, slack)
    sensors.tick()
    first = _run(instance, fail=True, tags={MAX_RETRIES_TAG: "1"})
    assert instance.get_run_by_id(first.run_id).tags.get("dagster/will_retry") == "true"
    sensors.tick()
    assert slack_server.for_route("technical") == []

    # The daemon's retry: a re-execution in the same run group, tagged as the daemon tags it.
    SHOULD_FAIL["value"] = True
    group = {ROOT_RUN_ID_TAG: first.run_id, PARENT_RUN_ID_TAG: first.run_id}
    retry = dg.execute_job(
        dg.reconstructable(_tiny_alert_job),
        instance=instance,
        tags={MAX_RETRIES_TAG: "1", RETRY_NUMBER_TAG: "1", **group},
        reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance),
    )
    assert not retry.success
    sensors.tick()
    [alert] = slack_server.for_route("technical")
    assert "*Attempt*\n2" in all_text(alert) and retry.run_id in all_text(alert)
    assert instance.get_run_by_id(retry.run_id).tags.get("dagster/will_retry") == "false"


def _tiny_alert_job() -> dg.JobDefinition:
    return tiny_alert_job

