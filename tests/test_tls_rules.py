"""The transport rules as classes (contract section 1): a secret goes over https://, or over http:// to a
loopback host only; a certificate failure is recognised however deep a library wraps it."""

from __future__ import annotations

import ssl

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from pipeline_common import tls
from pipeline_common.script_support import EXIT_CONFIG, ConfigurationError, classify_failure

LOOPBACK_V4 = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)).map(
    lambda t: f"127.{t[0]}.{t[1]}.{t[2]}")
OTHER_V4 = st.tuples(st.integers(1, 223).filter(lambda a: a != 127), st.integers(0, 255), st.integers(0, 255),
                     st.integers(1, 254)).map(lambda t: ".".join(map(str, t)))
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z][a-z0-9-]{0,12}){1,3}", fullmatch=True).filter(
    lambda h: not h.startswith("localhost"))


@given(host=st.one_of(LOOPBACK_V4, st.just("localhost"), st.just("[::1]")), port=st.integers(1, 65535))
def test_http_to_a_loopback_host_is_accepted(host, port):
    tls.require_https(f"http://{host}:{port}/api", "TABLEAU_SERVER_URL", "the PAT")


@given(host=st.one_of(OTHER_V4, NAMES), port=st.integers(1, 65535))
def test_http_to_any_other_host_is_refused_and_https_accepted(host, port):
    with pytest.raises(ConfigurationError, match="clear text") as raised:
        tls.require_https(f"http://{host}:{port}/x", "AZURE_STORAGE_ACCOUNT_URL", "the SAS token")
    assert raised.value.exit_code == EXIT_CONFIG and host in str(raised.value)
    tls.require_https(f"https://{host}:{port}/x", "AZURE_STORAGE_ACCOUNT_URL", "the SAS token")


def _wrapped(depth: int, how: str) -> BaseException:
    error: BaseException = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                                          "failed: unable to get local issuer certificate")
    for level in range(depth):
        outer = requests.exceptions.SSLError(error) if how == "args" else RuntimeError(f"level {level}")
        if how == "cause":
            outer.__cause__ = error
        elif how == "context":
            outer.__context__ = error
        error = outer
    return error


@given(depth=st.integers(0, 6), how=st.sampled_from(["args", "cause", "context"]))
def test_a_certificate_failure_is_found_behind_any_wrapping_and_is_78_not_75(depth, how):
    error = _wrapped(depth, how)
    assert tls.certificate_failure(error) is not None
    problem = tls.certificate_error(error, "https://tableau.contoso.com", "TABLEAU_SERVER_URL")
    assert problem is not None and "tableau.contoso.com" in str(problem) and "certificate store" in str(problem)
    if isinstance(error, Exception):
        code, _ = classify_failure(error)
        assert code == EXIT_CONFIG


def test_other_network_errors_are_not_certificate_failures():
    assert tls.certificate_failure(requests.ConnectionError("Connection refused")) is None
    refused = RuntimeError("HTTP 403")
    refused.reason = "Server failed to authenticate the request"  # a reason phrase, not an exception
    assert tls.certificate_failure(refused) is None and classify_failure(refused) is None
    assert classify_failure(ConnectionResetError("reset"))[0] == 75
