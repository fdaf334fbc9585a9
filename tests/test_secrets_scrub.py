"""The scrubber masks a secret in each encoding it travels in, and secret-shaped values it never saw."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.secrets import register, scrub, scrub_data

SECRET = "Q~8sEcr3t/With+Odd=Chars&more"


@pytest.mark.parametrize("encode", [
    lambda s: s, lambda s: quote(s, safe=""), quote_plus, quote, lambda s: json.dumps(s)[1:-1],
    lambda s: quote(quote(s, safe=""), safe=""),
])
def test_a_configured_secret_is_masked_in_every_encoding(monkeypatch, encode) -> None:
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    text = f"token endpoint said: bad request {encode(SECRET)} (trace 42)"
    cleaned = scrub(text)
    assert encode(SECRET) not in cleaned and "***" in cleaned and cleaned.endswith("(trace 42)")


def test_the_parts_of_a_connection_string_and_a_sas_are_masked(monkeypatch) -> None:
    key = "a2V5LXZhbHVlLWJhc2U2NC1sb25nLWVub3VnaA=="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", f"AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2025-11-05&sp=rl&sig=c2lnbmF0dXJl%2Bw%3D")
    cleaned = scrub(f"key {key} / {quote(key, safe='')} / signature c2lnbmF0dXJl+w= / c2lnbmF0dXJl%2Bw%3D")
    assert key not in cleaned and quote(key, safe="") not in cleaned
    assert "c2lnbmF0dXJl" not in cleaned


def test_secret_shaped_values_never_seen_are_masked() -> None:
    text = ("GET /raw?comp=list&sig=dW5zZWVu%2Fsig&se=2099 Authorization: Bearer eyJ0eXAiOiJKV1QiLCJh.eyJhdWQiOiJodHRwczov.c2ln "
            "client_secret=neverseen123&client_id=abc https://hooks.slack.com/services/T000/B000/XXXX "
            "download?tempauth=v1.abcdef123 {\"access_token\": \"tok-unseen-123456\"}")
    cleaned = scrub(text)
    for leaked in ("dW5zZWVu", "eyJ0eXAi", "neverseen123", "T000/B000", "abcdef123", "tok-unseen"):
        assert leaked not in cleaned
    assert "client_id=abc" in cleaned and "comp=list" in cleaned  # what is not secret stays readable


def test_tokens_registered_at_run_time_are_masked_in_nested_metadata() -> None:
    token = "opaque-access-token-" + "7" * 20
    register(token)
    assert scrub_data({"source": f"x {token}", "rows": 3, "list": [quote(token)]}) == {
        "source": "x ***", "rows": 3, "list": ["***"]}


def test_a_crash_leaves_the_script_with_its_message_scrubbed(monkeypatch) -> None:
    """Class: a secret quoted by an unforeseen exception's own args (what Pipes reports as 'closed with
    exception'), in any encoding; the crash keeps its type."""
    from pipeline_common.script_support import script_run

    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    for encoded in (SECRET, quote(SECRET, safe="")):
        with pytest.raises(RuntimeError) as caught:
            with script_run("scrub_test"):
                raise RuntimeError(f"token endpoint said: {encoded}", 42)
        assert caught.value.args[1] == 42  # what is not text stays as it was
        assert encoded not in str(caught.value.args) and "***" in caught.value.args[0]
        assert caught.value.__context__ is None and caught.value.__cause__ is None


KEY_NAMES = ["AccountKey", "accountkey", "ACCOUNTKEY", " AccountKey ", "SharedAccessSignature", "sharedaccesssignature",
             "SHAREDACCESSSIGNATURE", "sig", "SIG", "Sig"]
SECRET_TEXT = st.text(alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
                      min_size=8, max_size=40)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(key_name=st.sampled_from(KEY_NAMES), value=SECRET_TEXT)
def test_a_connection_string_part_is_masked_on_its_own_whatever_the_key_spelling(key_name, value) -> None:
    """Class: the secret part of a connection string (AccountKey, SharedAccessSignature, sig, in any letter
    case, spaces around the key) quoted alone, without its `Key=` prefix for the patterns to catch."""
    connection = f"DefaultEndpointsProtocol=https;AccountName=acct;{key_name}={value};EndpointSuffix=core.windows.net"
    cleaned = scrub(f"the server quoted {value} back", {"AZURE_STORAGE_CONNECTION_STRING": connection})
    assert value not in cleaned and cleaned == "the server quoted *** back"


@settings(max_examples=40, deadline=None, derandomize=True)
@given(signature=SECRET_TEXT)
def test_the_signature_inside_a_sas_is_masked_raw_and_url_encoded(signature) -> None:
    sas = f"sv=2025-11-05&sp=rl&sig={quote(signature, safe='')}&se=2099-01-01"
    if len(signature) % 2:  # as copied from a URL: a leading '?', the signature first
        sas = f"?sig={quote(signature, safe='')}&sv=2025-11-05&sp=rl"
    for shown in (signature, quote(signature, safe="")):
        cleaned = scrub(f"signature {shown} rejected", {"AZURE_STORAGE_SAS_TOKEN": sas})
        assert cleaned == "signature *** rejected", (shown, cleaned)


def test_registered_values_from_six_characters_on_are_secrets() -> None:
    import uuid

    five, six = uuid.uuid4().hex[:5], uuid.uuid4().hex[:6]  # fresh: registration lasts for the process
    register(None, "", five, six, "  ")  # nothing set, too short, just long enough
    assert scrub(f"x {five} y") == f"x {five} y"
    assert scrub(f"x {six} y") == "x *** y"


@pytest.mark.parametrize("secret", ['pa"ss\\word-1', "pässwörd-ü", "tab\tsecret-x"])
def test_a_secret_is_masked_in_its_json_escaped_form(monkeypatch, secret) -> None:
    """Class: a secret with characters JSON escapes (quote, backslash, non-ASCII, control) inside a JSON body."""
    monkeypatch.setenv("TABLEAU_PAT_SECRET", secret)
    body = json.dumps({"error": f"token {secret} expired"})
    assert json.dumps(secret)[1:-1] in body
    assert scrub(body) == json.dumps({"error": "token *** expired"})


def test_log_records_are_scrubbed_in_message_arguments_and_traceback(monkeypatch) -> None:
    import io
    import logging

    from pipeline_common.secrets import ScrubbingFilter

    monkeypatch.setenv("TABLEAU_PAT_SECRET", SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubbingFilter())
    log = logging.getLogger("scrub_filter_test")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("token %s refused, %d tries", SECRET, 3)
        log.warning("plain %s and %d", "words", 7)  # nothing secret: rendered as usual
        try:
            raise RuntimeError(f"endpoint said {quote(SECRET, safe='')}")
        except RuntimeError:
            log.exception("sign-in failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text and quote(SECRET, safe="") not in text
    assert "token *** refused, 3 tries" in text and "plain words and 7" in text
    assert "RuntimeError: endpoint said ***" in text and "Traceback (most recent call last)" in text


def test_an_uncaught_exception_is_printed_scrubbed(monkeypatch, capsys) -> None:
    import sys

    from pipeline_common.secrets import install_excepthook

    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook()
    try:
        raise ValueError(f"bad secret {SECRET}")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    printed = capsys.readouterr().err
    assert SECRET not in printed and "ValueError: bad secret ***" in printed and "Traceback" in printed
