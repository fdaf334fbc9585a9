"""Secrets masked in every encoding a server or a library can echo them in (contract section 1).

Class: a secret (any printable text, including XML/JSON/URL metacharacters) embedded anywhere in a
message in one of: raw, URL-encoded (once, twice, `+` for spaces), JSON-escaped (ASCII or not),
XML/HTML-escaped (every common quote style), base64 and URL-safe base64 at any alignment inside a
longer encoded value (a Basic header's `user:secret`). After scrub(), the secret cannot be
recovered from the text by undoing that encoding.
"""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.secrets import scrub

SECRETS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from("&<>\"' é東"),
                  min_size=8, max_size=40)
PADDING = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


def _xml_variants(secret: str) -> list[str]:
    return [html.escape(secret), html.escape(secret, quote=False),
            secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            .replace("'", "&#39;"),
            secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&apos;")]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(secret=SECRETS, before=PADDING, after=PADDING, which=st.integers(0, 9))
def test_a_secret_is_masked_in_each_text_encoding(secret, before, after, which):
    encoded = [secret, quote(secret, safe=""), quote_plus(secret), quote(quote(secret, safe=""), safe=""),
               json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], *_xml_variants(secret)][which]
    text = f"{before}{encoded}{after}"
    cleaned = scrub(text, {"TABLEAU_PAT_SECRET": secret})
    decoders = [lambda t: t, unquote, lambda t: unquote(t.replace("+", " ")), lambda t: unquote(unquote(t)),
                lambda t: t.encode("ascii", "backslashreplace").decode("unicode_escape", "ignore"), lambda t: t,
                html.unescape, html.unescape, html.unescape, html.unescape]
    assert secret not in decoders[which](cleaned.replace(before, "", 1)), (text, cleaned)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(secret=SECRETS, prefix=st.binary(max_size=7), suffix=st.binary(max_size=7), urlsafe=st.booleans())
def test_a_secret_is_masked_inside_base64_at_any_alignment(secret, prefix, suffix, urlsafe):
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    blob = encode(prefix + secret.encode("utf-8") + suffix).decode("ascii")
    cleaned = scrub(f"Authorization failed for token {blob}", {"TABLEAU_PAT_SECRET": secret})
    token = cleaned.rsplit(" ", 1)[-1]
    # Undo the encoding on every piece the mask left: no piece (nor the whole) decodes to the secret.
    for piece in [token, *token.split("***")]:
        alphabet = re.sub(r"[^A-Za-z0-9+/_-]", "", piece).translate(str.maketrans("-_", "+/"))
        for start in range(4):
            chunk = alphabet[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            assert secret.encode("utf-8") not in base64.b64decode(chunk), (blob, cleaned)


def test_tableau_signin_error_body_with_an_escaped_secret_is_masked():
    secret = "A&b<c>\"d'e-PAT-0123456789"
    body = (f'<tsResponse><error code="401001"><detail>Signin failed for '
            f'personalAccessTokenSecret="{html.escape(secret)}"</detail></error></tsResponse>')
    cleaned = scrub(body, {"TABLEAU_PAT_SECRET": secret})
    assert html.escape(secret) not in cleaned and secret not in html.unescape(cleaned)
