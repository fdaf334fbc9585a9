"""The pipeline's memory and CPU limits (`resource_limits:` in pipeline.yaml), applied where processes start.

- **DuckDB** (dbt through the `pipeline_common.dbt_warehouse_folder` plugin, the exporter, the
  warehouse backup): `memory_limit`, `threads` and a `temp_directory` on the data drive (under
  DATA_DIR), where DuckDB spills what does not fit in `memory_limit` instead of failing.
- **The sync** (pyarrow, no DuckDB): pyarrow's CPU and I/O thread pools, datasets at once.
- **Priority**: the pipeline's processes run below normal priority, so the person at the PC comes
  first. On Windows a child is created with BELOW_NORMAL_PRIORITY_CLASS; on Linux/macOS it gets
  the configured nice value. A process that lowers itself (`lower_current_process`) passes that on
  to every process it starts: on POSIX the nice value is inherited, and on Windows a child of a
  below-normal process is below normal too (CreateProcess: "If none of the priority class flags is
  specified, the priority class defaults to NORMAL_PRIORITY_CLASS unless the priority class of the
  creating process is IDLE_PRIORITY_CLASS or BELOW_NORMAL_PRIORITY_CLASS").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline_common.config import DuckDBLimits, PipelineConfig, ResourceLimits, load_pipeline_config
from pipeline_common.settings import data_dir

BELOW_NORMAL_PRIORITY_CLASS = 0x00004000
"""Win32 process creation flag / priority class (subprocess.BELOW_NORMAL_PRIORITY_CLASS on Windows)."""


def limits(config: PipelineConfig | None = None) -> ResourceLimits:
    return (config or load_pipeline_config()).resource_limits


def temp_directory(config: PipelineConfig | None = None) -> Path:
    """DuckDB's spill folder: `resource_limits.temp_directory`, relative paths under DATA_DIR (the data drive)."""
    path = Path(limits(config).temp_directory).expanduser()
    return path if path.is_absolute() else data_dir() / path


def duckdb_settings(role: str, config: PipelineConfig | None = None) -> dict[str, Any]:
    """DuckDB settings for one of the limits' DuckDB users: 'dbt', 'exporter' or 'backup'.

    The spill folder is created here: DuckDB creates it too, but only on the first spill, and an
    uncreatable folder should fail at connect, not halfway through a build.
    """
    entry: DuckDBLimits = getattr(limits(config), role)
    spill = temp_directory(config)
    spill.mkdir(parents=True, exist_ok=True)
    return {"memory_limit": entry.memory_limit, "threads": entry.threads, "temp_directory": str(spill)}


def apply_duckdb_settings(con: Any, settings: dict[str, Any]) -> None:
    """SET each setting on an open DuckDB connection (dbt-duckdb hands its plugins an open one)."""
    for name, value in settings.items():
        literal = str(int(value)) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"
        con.execute(f"SET {name} = {literal}")


def connect(path: Path | str, role: str, read_only: bool = False, config: PipelineConfig | None = None):
    """duckdb.connect within the resource limits of `role`."""
    import duckdb

    return duckdb.connect(str(path), read_only=read_only, config=duckdb_settings(role, config))


def apply_arrow_threads(config: PipelineConfig | None = None) -> int:
    """Size pyarrow's thread pools to the sync's limits; returns the thread count."""
    import pyarrow as pa

    threads = limits(config).sync.threads
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(max(threads, 2))
    return threads


# ---------------------------------------------------------------- priority

def below_normal(config: PipelineConfig | None = None) -> bool:
    return limits(config).priority == "below_normal"


def popen_kwargs(config: PipelineConfig | None = None) -> dict[str, Any]:
    """Extra subprocess.Popen arguments that start a child below normal priority on Windows."""
    if below_normal(config) and sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", BELOW_NORMAL_PRIORITY_CLASS)}
    return {}


def lower_process(pid: int, config: PipelineConfig | None = None) -> None:
    """After a child started on POSIX: raise its nice value to the limits' (never lower it)."""
    if not below_normal(config) or sys.platform == "win32":
        return
    target = limits(config).nice
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) < target:
            os.setpriority(os.PRIO_PROCESS, pid, target)
    except (ProcessLookupError, PermissionError):  # already gone, or not ours: nothing to lower
        pass


def lower_current_process(config: PipelineConfig | None = None) -> None:
    """Run this process (and so everything it starts from now on) below normal priority.

    Idempotent; a process already at or below the limits' priority is left as it is (POSIX cannot
    raise a priority back without privileges, and a user who started the pipeline with `nice -n 15`
    meant it).
    """
    if not below_normal(config):
        return
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.GetCurrentProcess()
        current = kernel32.GetPriorityClass(handle)
        # Only NORMAL (0x20) and the classes above it are lowered; IDLE (0x40) and BELOW_NORMAL stay.
        if current not in (BELOW_NORMAL_PRIORITY_CLASS, 0x00000040):
            kernel32.SetPriorityClass(handle, BELOW_NORMAL_PRIORITY_CLASS)
        return
    lower_process(os.getpid(), config)
