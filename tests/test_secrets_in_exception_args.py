"""A secret carried in an exception's arguments (in several encodings, as bytes, inside containers, behind a
__str__ of the library's own) never leaves a real Pipes step: not in a Dagster event, the run's log files,
an alert file, or the script's JSON line (contract section 1: "also when they sit in an exception's
arguments")."""

import json
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest

from orchestration.pipes_runner import run_legacy_script

SECRETS = {
    "TABLEAU_PAT_SECRET": "pat~S3cr3t/+=&value-0123456789",
    "AZURE_CLIENT_SECRET": "Az.Cl1ent_Secret~with/slash+plus=eq",
    "SLACK_WEBHOOK_TECHNICAL": "https://hooks.slack.com/services/T0PIPE/B0TECH/xoxWebhookS3cret42",
}


def encodings(value: str) -> list[str]:
    """The forms a secret travels in: raw, URL-encoded (path and form), JSON-escaped, URL-encoded twice."""
    return [value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], quote(quote(value, safe=""), safe="")]


SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from urllib.parse import quote, quote_plus
    from pipeline_common.script_support import ConfigurationError, script_run

    mode = sys.argv[1]
    secrets = [os.environ[name] for name in %r]
    forms = [f for s in secrets for f in (s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1],
                                          quote(quote(s, safe=""), safe=""))]

    class ServiceError(Exception):
        # A library error that keeps the answer in an attribute and prints it from __str__ (as TSC's do).
        def __init__(self, body):
            super().__init__()
            self.body = body
        def __str__(self):
            return "service answered: " + self.body

    with script_run("leaky") as run:
        run.log.info("starting")
        if mode == "args":  # an unforeseen error (exit 1) whose arguments carry every form, bytes and containers
            raise RuntimeError(*forms, {"token": forms[0], "nested": [forms[1], (forms[2],)]},
                               forms[0].encode(), bytearray(forms[3].encode()))
        if mode == "custom_str":
            raise ServiceError(" ".join(forms))
        if mode == "chained":  # a mapped error (78) whose cause quotes the secrets
            try:
                raise ValueError(*forms)
            except ValueError:
                raise ConfigurationError("the service refused the credentials")
    """
    % (list(SECRETS),)
)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["args", "custom_str", "chained"])
def test_secrets_in_exception_arguments_reach_no_event_log_alert_or_json_line(tmp_path, isolated_env, monkeypatch, mode):
    import orchestration.pipes_runner as pipes_runner

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", "")  # the crash alert is filed under $DATA_DIR/alerts/
    monkeypatch.setattr(pipes_runner, "CRASH_RETRY_SECONDS", 0)
    script = tmp_path / "leaky_script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    home = tmp_path / "dagster_home"
    home.mkdir()

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1, delay=0))
    def leaky(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        return run_legacy_script(context, pipes_subprocess_client, script, [mode]).get_materialize_result()

    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = dg.materialize([leaky], resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
                                raise_on_error=False, instance=instance)
        assert not result.success
        events = [dg.serialize_value(record) for record in instance.all_logs(result.run_id)]
    assert events and any("leaky" in e for e in events)
    if mode != "chained":
        # The exception itself still reaches the run (type and masked text), so the failure is diagnosable.
        name = "RuntimeError" if mode == "args" else "ServiceError"
        assert any(name in e for e in events)
    files = [p for root in (home, isolated_env, tmp_path) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files) or mode == "chained"  # the crash alert was filed
    leaks = []
    for secret in SECRETS.values():
        for form in encodings(secret):
            leaks += [f"event {i}" for i, e in enumerate(events) if form in e]
            leaks += [str(p) for p in files if p != script and form.encode() in p.read_bytes()]
    assert leaks == []
