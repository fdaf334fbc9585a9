"""The scrubber masks a secret in each encoding it travels in, and secret-shaped values it never saw."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

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
