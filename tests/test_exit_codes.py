"""Exit-code classification (contract section 8), in-process through `script_run`, as every script ends.

Class: any exception a script's body can raise. A ScriptError ends in its own code (65, 74, 75, 78, or the
code it was given); a socket-level ConnectionError/TimeoutError in 75; an OSError about the pipeline's own
files (disk full, quota, permission, read-only, I/O error, file too large, too many open files) in 74; every
other exception is a crash (a bug) and is re-raised with its type. Each failure prints the JSON summary
line with its code and the scrubbed message.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json

import pytest

# Contract section 8: disk full, permission denied on the pipeline's own files, and their kin.
FILE_SYSTEM = {"ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "EFBIG", "EMFILE"}


def _end(raise_it) -> tuple[int | None, dict | None, BaseException | None]:
    """(exit code or None, the summary's error or None, the crash re-raised or None)."""
    from pipeline_common.script_support import script_run

    out = io.StringIO()
    code, crash = None, None
    with contextlib.redirect_stdout(out):
        try:
            with script_run("exit_code_test"):
                raise_it()
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - the crash path re-raises
            crash = exc
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    error = json.loads(lines[-1]).get("error") if lines else None
    return code, error, crash


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    monkeypatch.delenv("PIPELINE_ERROR_FILE", raising=False)


@pytest.mark.parametrize(("error", "code"), [
    ("BadDataError", 65), ("PipelineIOError", 74), ("TransientError", 75), ("ConfigurationError", 78),
])
def test_each_script_error_ends_in_its_code_with_the_summary(error, code) -> None:
    from pipeline_common import script_support

    def fail():
        raise getattr(script_support, error)("orders.csv line 3, column 'quantity': expected an integer, got 'x'")

    got, summary, crash = _end(fail)
    assert (got, crash) == (code, None)
    assert summary == {"code": code, "message": "orders.csv line 3, column 'quantity': expected an integer, got 'x'"}


def test_a_script_error_given_a_code_ends_in_that_code() -> None:
    from pipeline_common.script_support import ScriptError

    def fail():
        raise ScriptError("the lock is held", exit_code=75)

    assert _end(fail)[:2] == (75, {"code": 75, "message": "the lock is held"})


@pytest.mark.parametrize("kind", [ConnectionResetError, ConnectionRefusedError, TimeoutError, ConnectionError])
def test_a_network_error_that_escaped_the_script_is_transient(kind) -> None:
    def fail():
        raise kind("peer went away")

    code, summary, crash = _end(fail)
    assert (code, crash) == (75, None)
    assert summary["message"] == f"network error: {kind.__name__}: peer went away"


@pytest.mark.parametrize("number", sorted(errno.errorcode))  # every errno this system knows
def test_an_os_error_is_74_exactly_when_it_is_about_the_pipelines_files(number) -> None:
    error = OSError(number, "refused", "/data/raw/out.parquet")  # Python picks the subclass from the errno

    def fail():
        raise error

    code, summary, crash = _end(fail)
    if isinstance(error, (ConnectionError, TimeoutError)):  # a socket-level blip: 75
        assert (code, crash) == (75, None)
    elif errno.errorcode[number] in FILE_SYSTEM:
        assert (code, crash) == (74, None)
        assert summary["code"] == 74 and "/data/raw/out.parquet" in summary["message"]
    else:
        assert code is None and isinstance(crash, OSError), "an OSError not about our files is a crash"
        assert summary["code"] == 1


@pytest.mark.parametrize("kind", [ValueError, KeyError, OverflowError, ZeroDivisionError, RuntimeError])
def test_anything_else_is_a_crash_kept_with_its_type(kind) -> None:
    def fail():
        raise kind("unforeseen")

    code, summary, crash = _end(fail)
    assert code is None and type(crash) is kind
    assert summary["code"] == 1 and "unforeseen" in summary["message"]


def test_a_clean_run_exits_nothing() -> None:
    assert _end(lambda: None) == (None, None, None)


def test_the_summary_message_is_scrubbed(monkeypatch) -> None:
    from pipeline_common.script_support import BadDataError

    monkeypatch.setenv("TABLEAU_PAT_SECRET", "pat-secret-value-123456")

    def fail():
        raise BadDataError("server said pat-secret-value-123456 is wrong")

    code, summary, _ = _end(fail)
    assert code == 65 and "pat-secret-value-123456" not in summary["message"] and "***" in summary["message"]
