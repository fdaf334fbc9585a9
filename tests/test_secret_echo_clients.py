"""Secrets never shown in any encoding, and server error bodies never quoted, through the real client
libraries against the local HTTPS doubles (issue 24, item 8).

Class: a credential holding any characters (`& < > " ' % + / =`, spaces, non-ASCII) that a server echoes
back in its error answer, in whatever encoding it travelled in (the PAT secret XML-escaped inside the
sign-in body, then escaped again inside the error's XML; the session token as sent in a header). Rule:
the pipeline names the refusal by its code and its own words; no encoding of the secret (raw, XML/HTML-
escaped in each quote style, URL-encoded, JSON-escaped, base64) and no part of the echoed body appears in
the message, the log lines (the script's and the client libraries'), the JSON line or the error file
that the Dagster run's failure and its alert quote.

The encodings are computed here with the standard library, independently of pipeline_common.secrets.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import logging
import uuid
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.tableau_server import PAT_NAME

SECRETS = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A) | st.sampled_from("&<>\"'%+/= é東"),
                  min_size=10, max_size=30).filter(lambda s: s.strip() == s and len(set(s)) > 4)


def encodings(secret: str) -> set[str]:
    """Every form a server or library could echo `secret` in."""
    forms = {
        secret,
        html.escape(secret), html.escape(secret, quote=False),
        secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&apos;"),
        secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;"),
        quote(secret, safe=""), quote_plus(secret), quote(quote(secret, safe=""), safe=""),
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
        base64.b64encode(secret.encode()).decode(), base64.urlsafe_b64encode(secret.encode()).decode(),
    }
    forms |= {html.escape(form) for form in list(forms)}  # escaped twice: an escaped body inside an XML error
    return {form for form in forms if len(form) >= 8}


def _run_script(body, error_file) -> tuple[int | None, str, str, str]:
    """`body` inside script_run, as every script runs: (exit code, stdout, stderr, error file)."""
    from pipeline_common.script_support import script_run

    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with script_run(f"echo_test_{uuid.uuid4().hex[:8]}") as run:  # a fresh logger bound to `err`
                body(run.log)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue(), error_file.read_text(encoding="utf-8") if error_file.exists() else ""


def _settings(tableau_server, secret: str):
    from pipeline_common.tableau.session import TableauSettings

    return TableauSettings(server_url=tableau_server.url, site_id=tableau_server.site_content_url, pat_name=PAT_NAME,
                           pat_secret=secret, project="Commercial", retries=2, retry_delay_seconds=0.0)


@pytest.fixture
def echoing_tableau(tableau_server, isolated_env, monkeypatch, tmp_path):
    tableau_server.echo_requests = True
    error_file = tmp_path / "error.txt"
    monkeypatch.setenv("PIPELINE_ERROR_FILE", str(error_file))
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    return tableau_server, error_file


def _outputs(caplog, *texts: str) -> str:
    return "\n".join([*texts, *(logging.Formatter().format(r) for r in caplog.records)])


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=SECRETS)
def test_a_refused_sign_in_echoing_the_secret_shows_no_form_of_it(echoing_tableau, monkeypatch, caplog, secret):
    """Tableau answers the sign-in 401 quoting the request: the PAT secret, XML-escaped, inside its error."""
    from pipeline_common.tableau.session import signed_in

    server, error_file = echoing_tableau
    error_file.unlink(missing_ok=True)
    caplog.clear()
    server.pat_secret = "the-accepted-secret-0000"
    monkeypatch.setenv("TABLEAU_PAT_SECRET", secret)
    before = len(server.sign_ins)

    def body(log):
        with signed_in(_settings(server, secret), log, 5, sleep=lambda s: None) as session:
            session.project_id()

    with caplog.at_level(logging.DEBUG):
        code, out, err, filed = _run_script(body, error_file)
    assert code == 78, (out, err)
    assert server.sign_ins[before]["secret"] == secret  # the server did receive (and echo) this very secret
    message = json.loads(out.strip().splitlines()[-1])["error"]["message"]
    assert "401001 (sign-in refused" in message and "TABLEAU_PAT_SECRET" in message
    assert "personalAccessTokenSecret" not in message  # nothing of the echoed body is quoted
    shown = _outputs(caplog, out, err, filed)
    leaked = [form for form in encodings(secret) if form in shown]
    assert not leaked, (leaked, shown[-2000:])


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=SECRETS, status=st.sampled_from([403, 409, 503]))
def test_a_refused_call_echoing_the_session_token_shows_neither_token_nor_secret(
        echoing_tableau, monkeypatch, caplog, secret, status):
    """Signed in with the generated secret, the project lookup is refused (403, 409) or fails (503, retried)
    with an answer that quotes the request's X-Tableau-Auth session token."""
    from pipeline_common.tableau.publish import publish_extract

    server, error_file = echoing_tableau
    error_file.unlink(missing_ok=True)
    caplog.clear()
    server.pat_secret = secret
    monkeypatch.setenv("TABLEAU_PAT_SECRET", secret)
    server.faults.clear()
    server.fail_next("projects", *([status] * 2))  # both attempts (retries=2)
    hyper = error_file.parent / "x.hyper"
    hyper.write_bytes(b"not reached")

    def body(log):
        publish_extract(hyper, "executive_daily_sales", _settings(server, secret), log, sleep=lambda s: None,
                        lock_timeout=5)

    with caplog.at_level(logging.DEBUG):
        code, out, err, filed = _run_script(body, error_file)
    assert code == (75 if status == 503 else 78), (out, err)
    message = json.loads(out.strip().splitlines()[-1])["error"]["message"]
    assert f"{status}" in message and "X-Tableau-Auth" not in message and "Echo" not in message
    tokens = set(server.token_owner)  # every session token the server handed out
    assert tokens
    shown = _outputs(caplog, out, err, filed)
    leaked = [form for form in encodings(secret) | tokens if form in shown]
    assert not leaked, (leaked, shown[-2000:])


def test_graph_and_slack_bodies_are_named_by_their_code_only():
    """The Graph refusal names status and error code; a Slack answer is quoted only as Slack's error token."""
    from orchestration.alerts.slack import slack_error_token
    from pipeline_common.sharepoint.graph import _graph_failure
    from pipeline_common.sharepoint.settings import SharePointSettings  # noqa: F401  (the type the call takes)

    class Settings:
        site_url = "https://contoso.sharepoint.com/sites/Finance"
        client_id = "app-0001"

    refused = str(_graph_failure(Settings(), "library lookup", 400, "invalidRequest"))
    assert "HTTP 400 invalidRequest" in refused
    odd = str(_graph_failure(Settings(), "library lookup", 400, "<html>token=abc&secret</html>"))
    assert "HTTP 400)" in odd and "secret" not in odd and "<html>" not in odd
    assert slack_error_token("invalid_payload") == "'invalid_payload'"
    echoed = '{"text": "hooks.slack.com/services/T/B/secretvalue", "token": "xoxb-123"}'
    assert slack_error_token(echoed) == f"(a body of {len(echoed)} characters, not quoted)"
