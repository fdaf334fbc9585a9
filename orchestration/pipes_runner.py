"""Run a legacy script under Dagster Pipes and turn its exit code into the right kind of failure.

The scripts exit with sysexits codes (pipeline_common.script_support): bad data (65), an I/O
error on the pipeline's own files (74) and bad config (78) fail the step at once
(`Failure(allow_retries=False)`); transient trouble (75: network, throttling, a held lock) raises
an error the asset's RetryPolicy retries with backoff. Any other exit code is a crash (a bug, a
kill, an out-of-memory): its traceback goes to the run log, an alert with its first line goes out
at once, and the step is retried once only, not the RetryPolicy's five times over half an hour.

Scripts are started and stopped by orchestration.child_process (own process group, waits in short
slices, a polite stop then the whole tree), so a cancelled or timed-out run stops them on Windows
too, where `PipesSubprocessClient`'s blocking wait and SIGINT do not.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError  # not re-exported by dagster
from dagster._core.pipes.client import PipesClientCompletedInvocation

from orchestration import child_process
from pipeline_common.script_support import (
    ERROR_FILE_ENV_VAR,
    EXIT_BAD_DATA,
    EXIT_CONFIG,
    EXIT_IO,
    EXIT_TRANSIENT,
    UTF8_CHILD_ENV,
)
from pipeline_common.resource_limits import lower_current_process, lower_process, popen_kwargs
from pipeline_common.secrets import scrub
from pipeline_common.settings import repo_root

SCRIPTS_DIR = repo_root() / "bat_file_data_refresh" / "python"

_EXIT_CODE_RE = re.compile(r"failed with code (-?\d+)")
_ERROR_EXCERPT_CHARS = 2000
_TRACEBACK_CHARS = 20000
CRASH_RETRY_SECONDS = 60.0
"""Wait before the one retry of a crashed script (a passing glitch, e.g. memory pressure)."""

PERMANENT_FAILURES = {
    EXIT_BAD_DATA: "rejected bad input",
    EXIT_IO: "hit an I/O error on the pipeline's own files",
    EXIT_CONFIG: "found a configuration error",
}


class TransientScriptError(Exception):
    """A script failed for a reason a retry may fix (network, throttling, a held lock)."""


class ScriptCrashError(Exception):
    """A script ended with an exit code no rule covers: a bug, a kill or an out-of-memory."""


def script_path(relative: str) -> Path:
    """A legacy script by its path under bat_file_data_refresh/python/."""
    path = SCRIPTS_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f"legacy script not found: {path}")
    return path


def _exit_code(error: Exception) -> int | None:
    match = _EXIT_CODE_RE.search(str(error))
    return int(match.group(1)) if match else None


def run_legacy_script(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    pipes_client: dg.PipesSubprocessClient,
    script: Path,
    args: Sequence[str],
) -> PipesClientCompletedInvocation:
    """Run `python <script> <args>` through Pipes; map its exit code to retry-or-fail."""
    with _script_launch(context, script, args) as (command, env, error_file):
        try:
            return pipes_client.run(context=context, command=command, env=env, cwd=str(repo_root()))
        except DagsterPipesExecutionError as exc:
            _raise_for_exit(context, script, args, _exit_code(exc), error_file, str(exc))
            raise AssertionError("unreachable")  # _raise_for_exit always raises


def stream_legacy_script(
    context: dg.AssetExecutionContext, script: Path, args: Sequence[str]
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Like run_legacy_script, for a script that reports several assets (sync_batch.py): what it
    reported is yielded even when it then fails, so one bad dataset does not hide the others'
    materializations; then its exit code maps to retry-or-fail the same way."""
    with _script_launch(context, script, args) as (command, env, error_file):
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
        ) as session:
            code = _run_to_the_end(
                context, command, env={**os.environ, **env, **session.get_bootstrap_env_vars()}, cwd=str(repo_root())
            )
        # Only what the script reported: a dataset it could not sync must not look materialized.
        yield from session.get_results(implicit_materializations=False)
        if code != 0:
            _raise_for_exit(context, script, args, code, error_file, f"{script.name} exited with code {code}")


def _run_to_the_end(context: dg.AssetExecutionContext | dg.OpExecutionContext, command: Sequence[str],
                    env: dict[str, str], cwd: str, stdout: Any = None, stderr: Any = None) -> int:
    """Start the command and wait for it; if the wait is interrupted (the run was cancelled or timed
    out), stop the command and its whole tree before the interrupt goes on."""
    process = child_process.popen(
        command, env=env, cwd=cwd, stdout=stdout, stderr=stderr,
        **popen_kwargs(),  # Windows: BELOW_NORMAL_PRIORITY_CLASS (pipeline.yaml resource_limits.priority)
    )
    lower_process(process.pid)  # POSIX: the limits' nice value (already inherited from this step's process)
    try:
        return child_process.wait(process)
    except BaseException:
        context.log.info(f"run interrupted: stopping {Path(command[1]).name if len(command) > 1 else command[0]} "
                         f"(pid {process.pid}) and its processes")
        child_process.stop(process, child_process.GRACE_S, log=context.log.info)
        raise


class LaunchingPipesClient(dg.PipesSubprocessClient):
    """PipesSubprocessClient whose child is started and stopped by orchestration.child_process."""

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        command: Sequence[str],
        extras: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> PipesClientCompletedInvocation:
        with dg.open_pipes_session(
            context=context, context_injector=self.context_injector, message_reader=self.message_reader, extras=extras
        ) as session:
            code = _run_to_the_end(
                context, command,
                env={**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()},
                cwd=cwd or self.cwd or os.getcwd(),
                stdout=None if self.forward_stdio else subprocess.PIPE,
                stderr=None if self.forward_stdio else subprocess.PIPE,
            )
            if code != 0:
                raise DagsterPipesExecutionError(f"External execution process failed with code {code}")
        return PipesClientCompletedInvocation(session)


@contextlib.contextmanager
def _script_launch(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, script: Path, args: Sequence[str]
) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """The command, the extra environment (UTF-8 mode, the error file the script writes its failure
    to) and that error file, removed afterwards whatever happens."""
    # The script's name and arguments are not secret; its environment may be, so it is not logged.
    context.log.info(f"running {script.name} {' '.join(args)}")
    # The resource limits (pipeline.yaml resource_limits.priority): this step's process goes below normal priority, so
    # every script it starts inherits it (PipesSubprocessClient takes no creation flags of ours).
    lower_current_process()
    fd, error_file = tempfile.mkstemp(prefix="pipeline-error-", suffix=".txt")
    os.close(fd)
    try:
        yield [sys.executable, str(script), *args], {ERROR_FILE_ENV_VAR: error_file, **UTF8_CHILD_ENV}, Path(error_file)
    finally:
        Path(error_file).unlink(missing_ok=True)


def _raise_for_exit(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    script: Path,
    args: Sequence[str],
    code: int | None,
    error_file: Path,
    fallback: str,
) -> None:
    """Raise what a script's non-zero exit calls for: retry (75), fail at once (65, 74, 78), or a crash."""
    full = scrub(error_file.read_text(encoding="utf-8", errors="replace").strip()) if error_file.exists() else ""
    detail = full[:_ERROR_EXCERPT_CHARS] or scrub(fallback)
    if code == EXIT_TRANSIENT:
        raise TransientScriptError(f"{script.name} hit a transient error (exit {code}): {detail}") from None
    if code in PERMANENT_FAILURES:
        raise dg.Failure(
            description=f"{script.name} {PERMANENT_FAILURES[code]} (exit {code}): {detail}",
            metadata={"script": script.name, "exit_code": code},
            allow_retries=False,
        ) from None
    _crashed(context, script, args, code, full or fallback)


def _crashed(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    script: Path,
    args: Sequence[str],
    code: int | None,
    text: str,
) -> None:
    """Log the traceback, alert at once on the first crash, retry once; a second crash fails the step."""
    shown = code if code is not None else "unknown"
    first_line = next((line for line in text.splitlines() if line.strip()), f"exit code {shown}")
    context.log.error(f"{script.name} crashed (exit {shown}):\n{text[:_TRACEBACK_CHARS]}")
    attempt = context.retry_number + 1
    if attempt == 1:
        _alert_crash(context, script, args, shown, first_line)
        raise dg.RetryRequested(max_retries=1, seconds_to_wait=CRASH_RETRY_SECONDS) from ScriptCrashError(
            f"{script.name} crashed (exit {shown}): {first_line}; retrying once in {CRASH_RETRY_SECONDS:.0f} s"
        )
    raise dg.Failure(
        description=f"{script.name} crashed again (exit {shown}, attempt {attempt}): {first_line}",
        metadata={"script": script.name, "exit_code": code if code is not None else -1, "crash": True},
        allow_retries=False,
    )


def _alert_crash(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, script: Path, args: Sequence[str],
    code: int | str, first_line: str,
) -> None:
    """The technical route hears of a crash now, not after the retries (never raises)."""
    try:
        from orchestration.alerts import blocks
        from orchestration.alerts.slack import slack_alerts_from_config
        from pipeline_common.config import load_pipeline_config

        alerts = load_pipeline_config().alerts
        title = f"Script crashed: {script.name} (run {context.run_id[:8]})"
        payload = blocks.message(
            title,
            "ERROR",
            summary=blocks.escape(f"Exit {code}. Retrying once in {CRASH_RETRY_SECONDS:.0f} s; "
                                  "the traceback is in the run's log."),
            fields={"Script": blocks.escape(f"{script.name} {' '.join(args)}"),
                    "Step": blocks.escape(context.op_handle.name if hasattr(context, "op_handle") else "?")},
            details=first_line,
            context=[f"run `{context.run_id}`"],
        )
        slack_alerts_from_config(alerts).send(alerts.run_failure_route, "ERROR", title, payload, context.log)
    except Exception as exc:  # noqa: BLE001 - an alert must never hide the crash itself
        context.log.warning(f"could not send the crash alert: {type(exc).__name__}: {exc}")


def materialization_metadata(invocation: PipesClientCompletedInvocation) -> dict[str, Any]:
    """Merge the metadata of every materialization the script reported (one asset per script)."""
    metadata: dict[str, Any] = {}
    for result in invocation.get_results():
        if isinstance(result, dg.MaterializeResult) and result.metadata:
            metadata.update(result.metadata)
    return metadata
