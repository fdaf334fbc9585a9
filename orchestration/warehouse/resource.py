"""The dbt CLI resource of the warehouse: runs dbt with absolute DATA_DIR and DUCKDB_PATH, and nothing else first.

What dagster-dbt 0.29 does on every `cli()` call before dbt starts, measured on the desktop
(docs/warehouse.md, "Orchestration overhead"): a `dbt --version` subprocess (about 1.3 s: it imports
dbt) and an in-process dbt adapter set-up (about 0.8 s), used only to fetch row counts or column
metadata, which these assets do not ask for. This resource answers the version from the installed
dbt-core package's metadata and sets up no adapter. Both are overrides of dagster-dbt's private
`_cli_version` / `_initialize_dbt_core_adapter`: if an upgrade renames them, the overrides simply stop
applying (the run is slower, never wrong), and tests/test_warehouse_lean.py, which counts the dbt
processes a build starts, fails and says so. dagster-dbt is pinned exactly in requirements.txt.

dbt is started and stopped by orchestration.child_process, so cancelling a run stops dbt on Windows
too (dagster-dbt's own stop sends SIGINT, which Windows refuses, after a blocking read that Windows'
interrupt cannot break). dagster-dbt 0.29 starts dbt with `subprocess.Popen` inside the classmethod
`DbtCliInvocation.run`, which `DbtCliResource.cli` calls by its module-level name; those two names
are the seam, swapped only for the duration of one `cli()` call (see `_launched_by_us`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster_dbt.core.dbt_cli_invocation as dbt_invocation_module
import dagster_dbt.core.resource as dbt_resource_module
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from packaging import version

from orchestration import child_process

from orchestration.warehouse.project import (
    dbt_executable,
    environment,
    prepared_for,
    record_prepared,
    warehouse_dbt_project,
    warehouse_env,
)
from pipeline_common.leftovers import remove_stale, temp_name
from pipeline_common.resource_limits import lower_current_process
from pipeline_common.script_support import UTF8_CHILD_ENV

_log = logging.getLogger(__name__)


class WarehouseDbtCliResource(DbtCliResource):
    """DbtCliResource whose dbt subprocess sees the warehouse paths of pipeline_common.settings.

    The paths are read when dbt starts (not at code load), so `.env` or test changes apply. When
    they differ from the ones the manifest was prepared with, the project is prepared again once
    (dbt would otherwise re-parse on every call: "profile has changed").
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        values = warehouse_env()
        # The resource limits: dbt inherits this step's below-normal priority (pipeline.yaml resource_limits.priority);
        # its DuckDB memory, threads and spill folder come from the profile's plugin.
        lower_current_process()
        Path(values["DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        project = warehouse_dbt_project()
        if args and args[0] != "parse" and prepared_for(project) != values:
            prepare_manifest(project)
        # UTF-8 mode: dagster-dbt reads dbt's output as UTF-8, a Windows console's dbt writes cp1252.
        # DBT_TARGET_PATH as the project has it: dagster-dbt puts each run's folder under the variable as it is,
        # so an empty one ("", which dbt and the project read as unset: target) put them in dbt/ itself.
        with environment({**values, **UTF8_CHILD_ENV, "DBT_TARGET_PATH": os.fspath(project.target_path)}), \
                _launched_by_us():
            return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:  # dagster-dbt would run `dbt --version` for this
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:  # only for row counts / column metadata
        return None


class LaunchedDbtCliInvocation(DbtCliInvocation):
    """A dbt invocation whose output is read in short slices and whose stop ends dbt's whole tree."""

    def _stream_stdout(self) -> Iterator[str | dict[str, Any]]:
        stdout = self.process.stdout
        if not stdout or stdout.closed:
            return
        finished = False
        try:
            with stdout:
                for raw_line in child_process.lines(stdout):
                    yield from _parse_line(self, raw_line)
            finished = True
        finally:
            if not finished:  # interrupted (run cancelled or timed out) or abandoned: stop dbt
                _log.info("stopping dbt: %s", self.dbt_command)
                code = child_process.stop(self.process, child_process.GRACE_S, log=_log.info)
                _log.info("dbt process ended with exit code %s", code)


def _parse_line(self: DbtCliInvocation, raw_line: bytes) -> Iterator[str | dict[str, Any]]:
    """One line of dbt's JSON log, as dagster-dbt's own _stream_stdout reads it."""
    import orjson

    raw_event_str = raw_line.decode().strip()
    try:
        raw_event = orjson.loads(raw_event_str)
        if raw_event["info"]["level"] == "error":
            self._error_messages.append(raw_event["info"]["msg"])
        yield raw_event
    except Exception:  # noqa: BLE001 - not a JSON event: dagster-dbt passes it on as text
        yield raw_event_str


class _GroupedSubprocess:
    """The `subprocess` module as dagster-dbt's invocation module sees it while we launch dbt."""

    PIPE = subprocess.PIPE
    STDOUT = subprocess.STDOUT

    @staticmethod
    def Popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen:  # noqa: N802 - subprocess's name
        return child_process.popen(args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


_SEAM_LOCK = threading.RLock()
for _module, _name in ((dbt_resource_module, "DbtCliInvocation"), (dbt_invocation_module, "subprocess")):
    if not hasattr(_module, _name):  # a dagster-dbt upgrade moved the seam: fail loudly at load
        raise ImportError(f"{_module.__name__}.{_name} is gone: orchestration/warehouse/resource.py "
                          "must learn how this dagster-dbt version starts dbt")


@contextlib.contextmanager
def _launched_by_us() -> Iterator[None]:
    """For one cli() call: dbt starts in its own process group and the invocation is ours."""
    with _SEAM_LOCK:
        saved = dbt_resource_module.DbtCliInvocation, dbt_invocation_module.subprocess
        dbt_resource_module.DbtCliInvocation = LaunchedDbtCliInvocation  # type: ignore[misc]
        dbt_invocation_module.subprocess = _GroupedSubprocess()  # type: ignore[assignment]
        try:
            yield
        finally:
            dbt_resource_module.DbtCliInvocation, dbt_invocation_module.subprocess = saved  # type: ignore[misc]


def warehouse_dbt_resource() -> WarehouseDbtCliResource:
    return WarehouseDbtCliResource(project_dir=warehouse_dbt_project(), dbt_executable=dbt_executable())


def prepare_manifest(project: DbtProject | None = None) -> Path:
    """Run `dbt parse` for the project (with the warehouse paths resolved); return the manifest path.

    dbt's partial parse depends on DATA_DIR and DUCKDB_PATH (the profile's path, the sources'
    locations), so the paths are recorded beside the manifest: a run with other paths prepares
    again once instead of re-parsing the project on every dbt call.
    """
    project = project or warehouse_dbt_project()
    target = Path(project.target_path)
    target = target if target.is_absolute() else Path(project.project_dir) / target
    target.mkdir(parents=True, exist_ok=True)
    # Parsed in a scratch folder, then moved in file by file: a process loading the code location meanwhile
    # reads the old manifest or the new one, never one dbt is half-way through writing.
    # The scratch name carries this process's identity: a prepare killed half-way (kill -9, power cut) leaves its
    # folder, and the next prepare removes it once its owner is gone.
    remove_stale(target, [PREPARE_PREFIX])
    scratch = target / temp_name(PREPARE_PREFIX.lstrip("."), "")
    scratch.mkdir()
    try:
        if (target / PARTIAL_PARSE_FILE).is_file():  # dbt's partial parse: only what changed is parsed again
            shutil.copy2(target / PARTIAL_PARSE_FILE, scratch / PARTIAL_PARSE_FILE)
        dbt = WarehouseDbtCliResource(project_dir=project, dbt_executable=dbt_executable())
        dbt.cli(["parse", "--quiet"], target_path=scratch).wait()
        for name in (PARTIAL_PARSE_FILE, "semantic_manifest.json", "manifest.json"):  # the manifest last
            if (scratch / name).is_file():
                _replace(scratch / name, target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    record_prepared(project)
    return project.manifest_path


PARTIAL_PARSE_FILE = "partial_parse.msgpack"
PREPARE_PREFIX = ".prepare-"


def _replace(source: Path, destination: Path, attempts: int = 20) -> None:
    """os.replace, retried briefly: on Windows a reader holding the old file open makes it fail for a moment."""
    for attempt in range(attempts):
        try:
            os.replace(source, destination)
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


def manifest_path(project: DbtProject | None = None) -> Path:
    """The prepared manifest; parse once (and say so) when set-up did not prepare it."""
    project = project or warehouse_dbt_project()
    if not project.manifest_path.is_file():
        _log.warning(
            "dbt manifest missing at %s: parsing the dbt project once now "
            "(run `python scripts/prepare_dbt.py` at install time to skip this)",
            project.manifest_path,
        )
        prepare_manifest(project)
    return project.manifest_path

