"""What a failing script leaves behind, in-process through `script_run` as every script ends: no secret in
the exception that escapes (what Pipes reports as "closed with exception"), in the log or in the error file.

Classes: where an exception can carry a secret: its arguments (text, bytes, nested containers), its own
attributes (a URL kept by a client library's error), an OSError's filename, filename2 and strerror, a
`__str__` of its own that assembles the secret from parts, and the chain of library errors behind it
(`raise ... from exc`, or raised while handling one). And which exit code each foreseeable failure ends in
(a certificate failure 78, a library's disk-full text 74, out of memory 74, requests' HTTP answers), with
the message the operator reads.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import traceback

import pytest

SECRET = "Q~8sEcr3t/With+Odd=Chars&more"


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    monkeypatch.delenv("PIPELINE_ERROR_FILE", raising=False)
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", SECRET)


def _escaped(raise_it, name: str = "failure_scrub_test") -> tuple[BaseException, dict | None]:
    """The exception (or SystemExit) that leaves `script_run`, and the summary's error."""
    from pipeline_common.script_support import script_run

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            with script_run(name):
                raise_it()
        except BaseException as exc:  # noqa: BLE001 - both a crash and SystemExit are what we look at
            escaped = exc
        else:
            raise AssertionError("script_run let the failure pass")
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    return escaped, (json.loads(lines[-1]).get("error") if lines else None)


def _crash(raise_it) -> BaseException:
    escaped, _ = _escaped(raise_it)
    assert not isinstance(escaped, SystemExit)
    return escaped


def _printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def test_a_crash_raised_from_a_library_error_quoting_a_secret_is_printed_without_it() -> None:
    def fail():
        try:
            raise ValueError(f"https://x.blob.core.windows.net/c?sv=1&sig={SECRET}")
        except ValueError as inner:
            raise RuntimeError("listing failed") from inner

    crash = _crash(fail)
    assert isinstance(crash, RuntimeError) and str(crash) == "listing failed"
    printed = _printed(crash)
    assert SECRET not in printed and "ValueError" not in printed and "direct cause" not in printed


def test_a_crash_while_handling_a_library_error_is_printed_without_the_context() -> None:
    def fail():
        try:
            raise ValueError(f"token {SECRET}")
        except ValueError:
            raise KeyError("customer_id")  # noqa: B904 - the implicit context is the case

    printed = _printed(_crash(fail))
    assert SECRET not in printed and "During handling" not in printed and "ValueError" not in printed


class _ClientError(Exception):
    """A client library's error keeping the request URL, a response body and a count as attributes."""

    def __init__(self, message: str, url: str, body: bytes, count: int):
        super().__init__(message)
        self.url, self.body, self.count, self.marker = url, body, count, _Marker()


class _Marker:
    """An object holding nothing secret."""


class _ReadOnlyUrlError(Exception):
    @property
    def url(self) -> str:
        return f"https://login/?client_secret={SECRET}"


def test_a_crash_s_own_attributes_are_scrubbed_and_the_rest_left_as_it_was() -> None:
    marker: list = []

    def fail():
        error = _ClientError("upload failed", f"https://x/?a=1&sig={SECRET}", f"echo {SECRET}".encode(), 3)
        marker.append(error.marker)
        raise error

    crash = _crash(fail)
    assert SECRET not in crash.url and crash.url.startswith("https://x/?a=1&sig=")
    assert crash.body == b"echo ***"
    assert crash.count == 3 and crash.marker is marker[0]  # nothing secret: the very same object
    assert crash.args == ("upload failed",) and SECRET not in _printed(crash)


def test_an_attribute_that_cannot_be_set_does_not_stop_the_scrubbing() -> None:
    def fail():
        error = _ReadOnlyUrlError(f"login said {SECRET}")
        error.__dict__["note"] = f"secret {SECRET}"
        raise error

    crash = _crash(fail)
    assert crash.args == ("login said ***",) and crash.__dict__["note"] == "secret ***"


@pytest.mark.parametrize("field", ["filename", "filename2", "strerror"])
def test_an_os_error_s_file_names_and_reason_are_scrubbed(field) -> None:
    values = {"filename": "C:/data/a.csv", "filename2": "C:/data/b.csv", "strerror": "Access is denied"}
    values[field] = f"C:/data/{SECRET}.csv" if field != "strerror" else f"denied for {SECRET}"

    def fail():
        raise PermissionError(errno.EACCES, values["strerror"], values["filename"], None, values["filename2"])

    escaped, error = _escaped(fail)
    assert isinstance(escaped, SystemExit) and escaped.code == 74
    assert SECRET not in error["message"]
    context = escaped.__context__
    for name, value in values.items():
        assert getattr(context, name) == value.replace(SECRET, "***")  # only the secret is masked
    assert SECRET not in str(context)


class _AssembledError(Exception):
    """Its text assembles a secret from two attributes, neither of which quotes it alone."""

    def __init__(self, head: str, tail: str):
        super().__init__("assembled")
        self.head, self.tail = head, tail

    def __str__(self) -> str:
        return f"token {self.head}{self.tail} refused"


def test_an_exception_whose_own_text_assembles_a_secret_keeps_its_type_and_shows_the_text_masked() -> None:
    half = len(SECRET) // 2
    crash = _crash(lambda: (_ for _ in ()).throw(_AssembledError(SECRET[:half], SECRET[half:])))
    assert isinstance(crash, _AssembledError)
    assert type(crash).__name__ == "_AssembledError" and type(crash).__module__ == _AssembledError.__module__
    assert str(crash) == "token *** refused"
    assert SECRET not in _printed(crash)


def test_an_exception_without_a_secret_keeps_its_class_and_text() -> None:
    crash = _crash(lambda: (_ for _ in ()).throw(_AssembledError("plain", "text")))
    assert type(crash) is _AssembledError and str(crash) == "token plaintext refused"


def test_a_classified_failure_is_logged_and_filed_with_its_message(tmp_path, monkeypatch) -> None:
    from pipeline_common.script_support import BadDataError

    error_file = tmp_path / "error.txt"
    monkeypatch.setenv("PIPELINE_ERROR_FILE", str(error_file))
    records: list[str] = []
    logger = logging.getLogger("failure_scrub_logged")

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger.addHandler(_Collect())
    message = f"orders.csv line 3: bad value near sig={SECRET}"
    escaped, error = _escaped(lambda: (_ for _ in ()).throw(BadDataError(message)), name="failure_scrub_logged")
    assert escaped.code == 65
    masked = "orders.csv line 3: bad value near sig=***"
    assert error == {"code": 65, "message": masked}
    assert error_file.read_text(encoding="utf-8") == masked
    assert records == [masked]


def test_a_library_saying_the_disk_is_full_ends_in_74_naming_the_pipeline_s_files() -> None:
    import re

    from pipeline_common.script_support import classify_failure

    code, message = classify_failure(RuntimeError("IO Error: could not write file: No space left on device"))
    assert code == 74
    assert re.fullmatch(r"writing the pipeline's files: No space left on device \(.+\); free some space on that "
                        r"disk, then re-run", message), message


def test_out_of_memory_ends_in_74_with_advice() -> None:
    from pipeline_common.script_support import classify_failure

    assert classify_failure(MemoryError()) == (
        74, "out of memory: close other programs or lower the work's size, then re-run")


def test_a_certificate_failure_ends_in_78_pointing_at_the_trust_store() -> None:
    import ssl

    from pipeline_common.script_support import classify_failure

    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                          "self-signed certificate in certificate chain")
    code, message = classify_failure(exc)
    assert code == 78
    assert message.startswith("a server's certificate could not be verified (")
    assert message.endswith("); if a corporate proxy inspects HTTPS, its root CA belongs in the operating "
                            "system's certificate store (docs/sources.md)")


@pytest.mark.parametrize(("status", "code", "text"), [
    (503, 75, "graph.example answered HTTP 503: will be retried"),
    (429, 75, "graph.example answered HTTP 429: will be retried"),
    (401, 78, "graph.example refused the credentials (HTTP 401): check the configured account"),
    (404, 78, "graph.example answered HTTP 404: check the configured URL and names"),
])
def test_a_requests_http_error_ends_by_its_status_never_as_a_file_error(status, code, text) -> None:
    import requests

    from pipeline_common.script_support import classify_failure

    response = requests.Response()
    response.status_code, response.url = status, "https://graph.example/v1/items"
    response._content = f"echo {SECRET}".encode()
    assert classify_failure(requests.HTTPError(f"{status} error", response=response)) == (code, text)


@pytest.mark.parametrize(("number", "advice"), [
    (errno.ENOSPC, "free some space on that disk, then re-run"),
    (errno.EROFS, "the disk is read-only; point DATA_DIR at a writable disk"),
    (None, "check the disk and the folder's permissions, then re-run"),
    (0, "check the disk and the folder's permissions, then re-run"),
])
def test_an_os_error_names_its_reason_and_the_advice_of_its_errno(tmp_path, number, advice) -> None:
    from pipeline_common.script_support import io_error

    exc = OSError(number, "Some reason") if number is not None else OSError("Some reason")
    text = str(io_error(tmp_path / "out.parquet", exc))
    assert text.startswith(f"writing {tmp_path / 'out.parquet'}: Some reason (") and text.endswith(f"); {advice}")


def test_an_os_error_without_any_text_is_named_by_its_type(tmp_path) -> None:
    from pipeline_common.script_support import io_error

    text = str(io_error(tmp_path / "x", FileExistsError(), "renaming"))
    assert text.startswith(f"renaming {tmp_path / 'x'}: FileExistsError (")


def test_an_os_error_without_file_names_keeps_them_empty() -> None:
    def fail():
        raise PermissionError(errno.EACCES, f"denied for {SECRET}")

    escaped, _ = _escaped(fail)
    context = escaped.__context__
    assert (context.filename, context.filename2, context.strerror) == (None, None, "denied for ***")
