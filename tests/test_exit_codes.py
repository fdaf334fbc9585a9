"""Exit-code classification (contract section 8), in-process through `script_run`, as every script ends.

Class: any exception a script's body can raise. A ScriptError ends in its own code (65, 74, 75, 78, or the
code it was given); a socket-level ConnectionError/TimeoutError in 75; any other OSError in 74, with advice
that fits its errno; a plain ValueError, KeyError, ... is a crash (a bug) and is re-raised with its type. Each failure prints the JSON summary
line with its code and the scrubbed message.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json

import pytest

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
def test_an_os_error_is_transient_when_it_is_the_network_else_74(number) -> None:
    """Contract section 8 (since issue 24): any OSError the script did not map is an I/O error (74) naming the
    path, except the socket-level ones (ConnectionError, TimeoutError: 75)."""
    error = OSError(number, "refused", "/data/raw/out.parquet")  # Python picks the subclass from the errno

    def fail():
        raise error

    code, summary, crash = _end(fail)
    assert crash is None
    if isinstance(error, (ConnectionError, TimeoutError)):
        assert code == 75
    else:
        assert code == 74 and summary["code"] == 74 and "/data/raw/out.parquet" in summary["message"]


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


@pytest.mark.parametrize(("name", "advice"), [
    ("ENOSPC", "free some space on that disk, then re-run"),
    ("EDQUOT", "free some space (disk quota), then re-run"),
    ("EACCES", "give the pipeline's account write access to that folder, then re-run"),
    ("EPERM", "give the pipeline's account write access to that folder, then re-run"),
    ("EROFS", "the disk is read-only; point DATA_DIR at a writable disk"),
    ("EIO", "check the disk and the folder's permissions, then re-run"),
])
def test_an_io_error_names_the_path_the_reason_the_free_space_and_what_to_do(tmp_path, name, advice) -> None:
    """Contract section 8: the 74 message names the path and the free space; the advice fits the cause."""
    target = tmp_path / "raw" / "out.parquet"

    def fail():
        raise OSError(getattr(errno, name), f"reason for {name}", str(target))

    code, summary, _ = _end(fail)
    assert code == 74
    message = summary["message"]
    assert message.startswith(f"accessing {target}: reason for {name} (")
    assert " MB free on " in message and message.endswith(f"); {advice}")


def test_an_io_error_without_a_path_or_text_still_says_what_it_is() -> None:
    def fail():
        raise PermissionError(errno.EACCES, "")

    code, summary, _ = _end(fail)
    assert code == 74 and summary["message"].startswith("accessing ?: [Errno 13] ")


@pytest.mark.parametrize("text", ["IO Error: No space left on device", 'Hyper: {"errno":"28"}',
                                  "There is not enough space on the disk.", "DISK FULL", "growing the database file failed"])
def test_a_library_saying_the_disk_is_full_is_an_io_error(tmp_path, text) -> None:
    from pipeline_common.script_support import disk_full_error

    error = disk_full_error(tmp_path / "w.duckdb", RuntimeError(text))
    assert error is not None and error.exit_code == 74
    assert str(error).startswith(f"writing {tmp_path / 'w.duckdb'}: No space left on device (")
    assert str(error).endswith("); free some space on that disk, then re-run")
    assert disk_full_error(tmp_path / "w.duckdb", RuntimeError("Catalog Error: table x does not exist")) is None
