"""Legacy scripts under Pipes: metadata travels; bad data fails once; transient errors are retried."""

import os
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from orchestration.pipes_runner import run_legacy_script

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline_common.script_support import BadDataError, TransientError, script_run, print_summary

    mode, counter = sys.argv[1], Path(sys.argv[2])
    counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
    with script_run("fake") as run:
        run.log.info("working on it")
        if mode == "bad":
            raise BadDataError("orders.csv line 7, column 'quantity': expected an integer, got 'x'")
        if mode == "transient":
            raise TransientError("Azure answered 503 Server Busy")
        if mode == "crash":
            import datetime as dt
            dt.date(2026, 11, 30) - dt.timedelta(days=10000000)  # an unforeseen bug: OverflowError
        if mode == "disk_full":
            import errno
            raise OSError(errno.ENOSPC, "No space left on device", str(counter.parent / "out.parquet"))
        if mode == "crash_with_secret":
            import os
            raise RuntimeError(f"token endpoint refused client secret {os.environ['SHAREPOINT_CLIENT_SECRET']}")
        if mode == "killed":
            import os, signal
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))  # Windows: TerminateProcess, exit 15
        run.report_materialization({"rows_loaded": 3, "newest_file_date": "2026-11-20"})
        print_summary({"rows_loaded": 3})
    """
)


def _materialize(
    tmp_path: Path, mode: str, max_retries: int = 2, instance: dg.DagsterInstance | None = None
) -> tuple[dg.ExecuteInProcessResult, int]:
    script = tmp_path / "fake_script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    counter = tmp_path / "attempts.txt"

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=max_retries, delay=0))
    def fake(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        return run_legacy_script(
            context, pipes_subprocess_client, script, [mode, str(counter)]
        ).get_materialize_result()

    result = dg.materialize(
        [fake], resources={"pipes_subprocess_client": dg.PipesSubprocessClient()}, raise_on_error=False,
        instance=instance,
    )
    return result, int(counter.read_text())


def test_success_carries_metadata(tmp_path):
    result, attempts = _materialize(tmp_path, "ok")
    assert result.success and attempts == 1
    [materialization] = result.asset_materializations_for_node("fake")
    assert materialization.metadata["rows_loaded"].value == 3
    assert materialization.metadata["newest_file_date"].value == "2026-11-20"


def test_bad_data_fails_at_once_with_the_scripts_message(tmp_path):
    result, attempts = _materialize(tmp_path, "bad")
    assert not result.success
    assert attempts == 1, "bad data must not be retried"
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "rejected bad input (exit 65)" in message
    assert "orders.csv line 7, column 'quantity'" in message


@pytest.mark.timeout(120)
def test_transient_error_is_retried(tmp_path):
    result, attempts = _materialize(tmp_path, "transient")
    assert not result.success
    assert attempts == 3, "one try plus two retries"
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    first_error = retries[0].event_specific_data.error
    assert first_error.cause.cls_name == "TransientScriptError"
    assert "hit a transient error (exit 75): Azure answered 503 Server Busy" in first_error.cause.message


def _filed_alerts(data_dir: Path) -> list[dict]:
    import json

    return [json.loads(line) for path in sorted((data_dir / "alerts").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["crash", "killed"])
def test_a_crash_alerts_at_once_and_is_retried_once_only(tmp_path, isolated_env, monkeypatch, mode):
    import orchestration.pipes_runner as pipes_runner

    monkeypatch.setattr(pipes_runner, "CRASH_RETRY_SECONDS", 0)
    instance = dg.DagsterInstance.ephemeral()
    result, attempts = _materialize(tmp_path, mode, max_retries=5, instance=instance)

    assert not result.success
    assert attempts == 2, "a crash is retried once, not by the RetryPolicy's five retries"
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "crashed again" in failure.event_specific_data.error.message
    [alert] = _filed_alerts(isolated_env)  # one alert, sent at the first crash (no webhook: filed)
    assert alert["route"] == "technical" and alert["severity"] == "ERROR"
    assert alert["title"].startswith("Script crashed: fake_script.py")
    details = str(alert["payload"])
    if mode == "crash":
        assert "OverflowError: date value out of range" in details
        assert "Traceback" not in details
        run_log = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert any("Traceback (most recent call last)" in m and "OverflowError" in m for m in run_log)
    else:
        assert ("-9" if os.name != "nt" else "Exit 15") in details


def test_disk_full_fails_at_once_with_exit_74(tmp_path):
    result, attempts = _materialize(tmp_path, "disk_full", max_retries=5)
    assert not result.success and attempts == 1
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "I/O error on the pipeline's own files (exit 74)" in message
    assert "out.parquet: No space left on device" in message and "MB free on" in message


@pytest.mark.timeout(120)
def test_a_secret_in_a_crash_message_never_reaches_the_event_log(tmp_path, isolated_env, monkeypatch):
    """The exception Pipes reports ('[pipes] ... closed with exception') is scrubbed, not just the log lines."""
    import orchestration.pipes_runner as pipes_runner

    secret = "Q~8sEcr3t/With+Odd=Chars&more"
    monkeypatch.setenv("SHAREPOINT_CLIENT_SECRET", secret)
    monkeypatch.setattr(pipes_runner, "CRASH_RETRY_SECONDS", 0)
    instance = dg.DagsterInstance.ephemeral()
    result, attempts = _materialize(tmp_path, "crash_with_secret", max_retries=0, instance=instance)

    assert not result.success
    records = instance.all_logs(result.run_id)
    assert any("closed with exception" in (r.user_message or "") for r in records), "Pipes reported the crash"
    assert any("token endpoint refused client secret ***" in (r.user_message or "") for r in records)
    for record in records:
        assert secret not in str(record), record.user_message
    assert secret not in str(_filed_alerts(isolated_env))
