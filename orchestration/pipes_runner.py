"""Run a legacy script under Dagster Pipes and turn its exit code into the right kind of failure.

The scripts exit with sysexits codes (pipeline_common.script_support): bad data and bad
config fail the step at once (`Failure(allow_retries=False)`); transient trouble (network,
throttling, a held lock) raises an error the asset's RetryPolicy retries with backoff.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError  # not re-exported by dagster
from dagster._core.pipes.client import PipesClientCompletedInvocation

from pipeline_common.script_support import (
    ERROR_FILE_ENV_VAR,
    EXIT_BAD_DATA,
    EXIT_CONFIG,
    EXIT_TRANSIENT,
)
from pipeline_common.secrets import scrub
from pipeline_common.settings import repo_root

SCRIPTS_DIR = repo_root() / "bat_file_data_refresh" / "python"

_EXIT_CODE_RE = re.compile(r"failed with code (-?\d+)")
_ERROR_EXCERPT_CHARS = 2000


class TransientScriptError(Exception):
    """A script failed for a reason a retry may fix (network, throttling, a held lock)."""


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
    command = [sys.executable, str(script), *args]
    # The script's name and arguments are not secret; its environment may be, so it is not logged.
    context.log.info(f"running {script.name} {' '.join(args)}")
    fd, error_file = tempfile.mkstemp(prefix="pipeline-error-", suffix=".txt")
    os.close(fd)
    try:
        return pipes_client.run(
            context=context, command=command, env={ERROR_FILE_ENV_VAR: error_file}, cwd=str(repo_root())
        )
    except DagsterPipesExecutionError as exc:
        code = _exit_code(exc)
        detail = Path(error_file).read_text(encoding="utf-8", errors="replace").strip()
        detail = scrub(detail[:_ERROR_EXCERPT_CHARS] or str(exc))
        if code == EXIT_TRANSIENT:
            raise TransientScriptError(f"{script.name} hit a transient error (exit {code}): {detail}") from None
        kind = {EXIT_BAD_DATA: "rejected bad input", EXIT_CONFIG: "found a configuration error"}.get(
            code, "failed"
        )
        raise dg.Failure(
            description=f"{script.name} {kind} (exit {code}): {detail}",
            metadata={"script": script.name, "exit_code": code if code is not None else -1},
            allow_retries=code not in (EXIT_BAD_DATA, EXIT_CONFIG),
        ) from None
    finally:
        Path(error_file).unlink(missing_ok=True)


def materialization_metadata(invocation: PipesClientCompletedInvocation) -> dict[str, Any]:
    """Merge the metadata of every materialization the script reported (one asset per script)."""
    metadata: dict[str, Any] = {}
    for result in invocation.get_results():
        if isinstance(result, dg.MaterializeResult) and result.metadata:
            metadata.update(result.metadata)
    return metadata
