"""The scrubber, class by class, with exact expected texts (so a partial mask or an over-mask shows).

Classes: a secret inside base64 (a Basic header, a token in an encoded JSON blob) at each of the three byte
alignments, short or long, with text on either side; a secret as an XML or HTML document escapes it (each
escaping convention); a secret in JSON written without ASCII escapes; a URL-encoded secret encoded again;
a secret that contains another secret (a SAS token and its signature): the longest is masked whole; the
parts of a connection string that are not secret stay readable; secret-shaped parameters keep their
names; an uncaught exception's traceback is printed scrubbed.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import traceback
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

SECRET = "Q~8sEcr3t/With+Odd=Chars&more"


def _recoverable(text: str, secret: bytes) -> bool:
    """Whether any 3 consecutive bytes of `secret` can be read back from `text` by decoding its base64
    fragments (standard or URL-safe) at any alignment."""
    for fragment in re.findall(r"[A-Za-z0-9+/_-]+", text):  # the masks (***) and any other text cut it
        for alphabet in (None, b"-_"):
            for offset in range(4):
                piece = fragment[offset:]
                piece = piece[: len(piece) - len(piece) % 4]
                try:
                    decoded = base64.b64decode(piece, altchars=alphabet, validate=True)
                except ValueError:
                    continue
                if any(secret[i:i + 3] in decoded for i in range(len(secret) - 2)):
                    return True
    return False


@settings(max_examples=80, deadline=None, derandomize=True)
@given(secret=st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"),
                      min_size=6, max_size=40),
       before=st.binary(max_size=7), after=st.binary(max_size=7), urlsafe=st.booleans())
@example(secret="abcdef", before=b"", after=b"", urlsafe=False)  # a 6-byte secret, aligned: 8 characters
@example(secret="abcdef", before=b"\x01", after=b"", urlsafe=False)  # off the boundary: 7 characters of its own
@example(secret="abcdef", before=b"\x01\x02", after=b"\x03", urlsafe=True)
@example(secret="abcdefg", before=b"\xff", after=b"\x00", urlsafe=True)
@example(secret="abcdefgh", before=b"\x01\x02", after=b"", urlsafe=False)
def test_a_secret_inside_base64_cannot_be_read_back_at_any_alignment(secret, before, after, urlsafe) -> None:
    """At every alignment, from the shortest value treated as a secret (6 bytes) on."""
    from pipeline_common.secrets import scrub

    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    blob = encode(before + secret.encode() + after).decode()
    assert _recoverable(blob, secret.encode())  # the check itself sees the plain encoding
    cleaned = scrub(f"payload={blob};", {"TABLEAU_PAT_SECRET": secret})
    assert not _recoverable(cleaned, secret.encode()), cleaned
    assert cleaned.startswith("payload=") and cleaned.endswith(";")


@pytest.mark.parametrize("escape", [
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"},
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"},
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"},
    {"&": "&amp;", "<": "&lt;", ">": "&gt;"},
])
def test_a_secret_escaped_by_an_xml_or_html_server_is_masked(monkeypatch, escape) -> None:
    from pipeline_common.secrets import scrub

    secret = "p&ss<w>rd\"it's"
    monkeypatch.setenv("TABLEAU_PAT_SECRET", secret)
    escaped = "".join(escape.get(ch, ch) for ch in secret)
    assert scrub(f"<error><detail>{escaped}</detail></error>") == "<error><detail>***</detail></error>"


@pytest.mark.parametrize("secret", ["sécret-\"quoted\"-välue", "plain-ascii-\\-value"])
def test_a_secret_in_json_written_with_or_without_ascii_escapes_is_masked_whole(monkeypatch, secret) -> None:
    from pipeline_common.secrets import scrub

    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    for ensure_ascii in (True, False):
        document = json.dumps({"detail": secret, "n": 1}, ensure_ascii=ensure_ascii)
        assert scrub(document) == '{"detail": "***", "n": 1}'


def test_a_url_encoded_secret_encoded_again_is_masked_whole(monkeypatch) -> None:
    from pipeline_common.secrets import scrub

    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    for form in (quote(quote(SECRET), safe=""), quote(quote(SECRET, safe=""), safe="")):
        assert scrub(f"redirect={form}&x=1") == "redirect=***&x=1"


def test_a_sas_token_is_masked_whole_not_around_its_signature(monkeypatch) -> None:
    from pipeline_common.secrets import scrub

    token = "sv=2025-11-05&ss=b&srt=co&sp=rl&se=2099-01-01&sig=zzSignatureValue123%3D"
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", token)
    assert scrub(f"GET https://acct.blob.core.windows.net/c?{token} failed") == (
        "GET https://acct.blob.core.windows.net/c?*** failed")
    assert scrub("signature zzSignatureValue123= alone") == "signature *** alone"


@pytest.mark.parametrize("token", ["?sig=FirstSig0987654&sv=2025-11-05", "sig=FirstSig0987654&sv=2025-11-05",
                                   "?sv=2025-11-05&sig=FirstSig0987654"])
def test_the_signature_of_a_sas_token_is_masked_alone_wherever_it_stands_in_the_token(monkeypatch, token) -> None:
    """Class: a SAS token as copied from the portal (with its leading '?') or without it, the signature first
    or last: the signature quoted on its own (a log line, an error body) is masked too."""
    from pipeline_common.secrets import scrub

    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", token)
    assert scrub("signature FirstSig0987654 rejected") == "signature *** rejected"
    assert scrub(f"GET /c{token if token.startswith('?') else '?' + token} 403") == (
        f"GET /c{'?' if not token.startswith('?') else ''}*** 403")


def test_the_parts_of_a_connection_string_that_are_not_secret_stay_readable(monkeypatch) -> None:
    from pipeline_common.secrets import scrub

    key = "a2V5LXZhbHVlLWJhc2U2NC1sb25nLWVub3VnaA=="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"DefaultEndpointsProtocol=https;AccountName=retailacct;AccountKey={key};"
                       "EndpointSuffix=core.windows.net")
    assert scrub(f"account retailacct at https://retailacct.blob.core.windows.net key {key}") == (
        "account retailacct at https://retailacct.blob.core.windows.net key ***")


@pytest.mark.parametrize(("text", "cleaned"), [
    ("GET /c?comp=list&sig=abc%2Fdef&se=1", "GET /c?comp=list&sig=***&se=1"),
    ("client_secret=never-seen-1&client_id=app", "client_secret=***&client_id=app"),
    ('{"access_token": "tok-123456789"}', '{"access_token": "***"}'),
    ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ***"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ("https://hooks.slack.com/services/T000/B000/XXXX now", "https://hooks.slack.com/services/*** now"),
    ('<credentials personalAccessTokenSecret="abcdef123"/>', '<credentials personalAccessTokenSecret="***"/>'),
])
def test_secret_shaped_parameters_keep_their_names(text, cleaned) -> None:
    from pipeline_common.secrets import scrub

    assert scrub(text) == cleaned


def test_an_uncaught_exception_is_printed_scrubbed_with_its_traceback(monkeypatch, capsys) -> None:
    from pipeline_common.secrets import install_excepthook

    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_excepthook()
    try:
        raise RuntimeError(f"token endpoint said {SECRET}")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        expected = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).replace(SECRET, "***")
    err = capsys.readouterr().err
    assert err == expected
    assert err.startswith("Traceback (most recent call last):\n") and err.endswith(
        "RuntimeError: token endpoint said ***\n")


def test_a_log_record_is_kept_and_its_message_arguments_and_traceback_are_scrubbed(monkeypatch) -> None:
    """Class: what a logger with the scrubbing filter lets through: every record (none dropped), a secret in
    the message itself, in its %-arguments, in the traceback of logger.exception."""
    import io
    import logging

    from pipeline_common.secrets import ScrubbingFilter

    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)
    out = io.StringIO()
    logger = logging.Logger("secrets_cases_filter")  # outside the logger tree: no handler but the test's own
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addFilter(ScrubbingFilter())
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    seen: list[logging.LogRecord] = []
    collect = logging.Handler()
    collect.emit = seen.append
    logger.addHandler(collect)
    try:
        logger.removeHandler(handler)
        logger.warning("a broken format %d", "x")  # not the filter's to fix: passed on as it is
        logger.addHandler(handler)
        logger.info("plain text %s", "stays")
        logger.warning(f"token {SECRET} in the message")
        logger.warning("token %s in an argument", SECRET)
        try:
            raise RuntimeError(f"login said {SECRET}")
        except RuntimeError:
            logger.exception("sign-in failed")
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(collect)
    assert seen[0].msg == "a broken format %d" and len(seen) == 5
    text = out.getvalue()
    assert SECRET not in text
    lines = text.splitlines()
    assert lines[:4] == ["INFO plain text stays", "WARNING token *** in the message", "WARNING token *** in an argument",
                         "ERROR sign-in failed"]
    assert lines[-1] == "RuntimeError: login said ***" and "Traceback (most recent call last):" in lines
