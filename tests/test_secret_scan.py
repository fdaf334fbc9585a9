"""A secret scan over everything failing runs write: the Dagster event log and run storage, compute
logs, the alert files, DATA_DIR, and what reached stdout, stderr and the log, in every encoding a
secret travels in (raw, URL-encoded once and twice, form-encoded, a SAS signature decoded).

The sources are made to fail the way that leaks: a token endpoint that quotes the URL-encoded
request form (client secret included) in its error, and a storage account that quotes the request
URL (SAS signature included) in its 403.
"""

from __future__ import annotations

import html
import http.server
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, unquote

import dagster as dg

from orchestration.alerts.run_alerts import build_run_alert_sensors
from orchestration.alerts.slack import SlackAlerts
from orchestration.budget.assets import build_budget_asset
from orchestration.ingestion.assets import build_defs as build_ingestion_defs
from orchestration.resources import shared_resources
from pipeline_common.config import Alerts, load_pipeline_config
from tests.plugins.entra_graph import FakeMicrosoft365
from tests.plugins.loopback_http import serve_on_loopback
from tests.plugins.sample_data import SAMPLE_AS_OF

SAS = ("sv=2025-11-05&ss=b&srt=co&sp=rl&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp"
       "&sig=Zm9v%2Bb2FyL3NlY3JldA%2F9xq7Kp%3D")


class _RefusingStorage(http.server.BaseHTTPRequestHandler):
    """A storage account that refuses the SAS and quotes the request (signature and all) back."""

    def do_GET(self) -> None:  # noqa: N802
        body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>"
                f"Server failed to authenticate the request. Request: {html.escape(self.path)}</Message></Error>").encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-ms-error-code", "AuthenticationFailed")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret), quote(quote(secret, safe=""), safe=""),
            json.dumps(secret)[1:-1]}


def test_nothing_a_failing_run_writes_holds_a_secret(
    tmp_path: Path, isolated_env: Path, microsoft365: FakeMicrosoft365, monkeypatch, caplog, capfd
) -> None:
    config = load_pipeline_config()
    microsoft365.echo_form_in_errors = True
    # An app id the tenant does not know: the endpoint answers AADSTS700016 quoting the whole form.
    monkeypatch.setenv("SHAREPOINT_CLIENT_ID", "99999999-8888-7777-6666-555555555555")
    home = tmp_path / "dagster_home"
    home.mkdir()
    with serve_on_loopback(_RefusingStorage, "refusing-storage") as storage_url:
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", f"{storage_url}/devstoreaccount1")
        monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", SAS)
        defs = dg.Definitions.merge(
            build_ingestion_defs(config),
            dg.Definitions(assets=[build_budget_asset(config)], resources=shared_resources()),
        )
        job = dg.define_asset_job(
            "secret_scan", selection=dg.AssetSelection.assets("uk_orders_azure", "daily_sales_budget_exchange_ingest"),
        )
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
        sensor, _ = build_run_alert_sensors(Alerts(), dg.DefaultSensorStatus.RUNNING)
        slack = SlackAlerts(routes={"technical": "SLACK_WEBHOOK_TECHNICAL"}, max_attempts=1, backoff_seconds=0.01)
        with caplog.at_level(logging.DEBUG), dg.DagsterInstance.local_temp(str(home)) as instance:
            first = dg.build_sensor_context(instance=instance, resources={"slack_alerts": slack})
            sensor.evaluate_tick(first)
            result = defs.resolve_job_def("secret_scan").execute_in_process(
                instance=instance, raise_on_error=False,
                run_config={"ops": {"azure_sync": {"config": {"as_of": SAMPLE_AS_OF.isoformat()}}}},
            )
            second = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"slack_alerts": slack})
            sensor.evaluate_tick(second)

    assert not result.success
    failures = {e.step_key: e.event_specific_data.error.message for e in result.all_events if e.is_step_failure}
    assert "AADSTS700016" in failures["daily_sales_budget_exchange_ingest"]  # the echoing endpoint was reached
    assert "HTTP 403" in failures["azure_sync"] and "SAS" in failures["azure_sync"]
    assert microsoft365.token_forms and "client_secret" in microsoft365.token_forms[0]

    signature = parse_qs(SAS)["sig"][0]  # decoded: Zm9v+b2FyL3NlY3JldA/9xq7Kp=
    secrets = {"client secret": microsoft365.client_secret, "SAS signature": signature, "SAS token": unquote(SAS)}
    written = [p for root in (home, isolated_env) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in written), "run and event storage were written"
    assert any(p.name.startswith("alerts_") for p in written), "the failure alert was written to a file"
    out, err = capfd.readouterr()
    texts = {"captured output": out + err + caplog.text, **{str(p): p.read_bytes().decode("utf-8", "replace")
                                                            for p in written}}
    for what, secret in secrets.items():
        for form in _forms(secret) | _forms(SAS if what == "SAS token" else secret):
            for where, text in texts.items():
                assert form not in text, f"{what} ({form!r}) found in {where}"
