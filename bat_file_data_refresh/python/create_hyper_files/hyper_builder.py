"""Build a .hyper extract from Parquet files with Hyper's native Parquet reader (no row-by-row inserts)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline_common.script_support import BadDataError
from tableauhyperapi import (
    Connection,
    CreateMode,
    HyperException,
    HyperProcess,
    Telemetry,
    escape_name,
    escape_string_literal,
)

EXTRACT_SCHEMA = "Extract"
USER_AGENT = "retail-sales-pipeline"


def hyper_table_names(tables: list[str]) -> dict[str, str]:
    """Tableau's convention: one table is "Extract"."Extract"; several keep their own names."""
    if len(tables) == 1:
        return {tables[0]: "Extract"}
    return {table: table for table in tables}


def start_hyper(work_dir: Path) -> HyperProcess:
    """A Hyper process with telemetry off whose logs stay in work_dir, not the caller's cwd."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return HyperProcess(
        telemetry=Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
        user_agent=USER_AGENT,
        parameters={"log_dir": str(work_dir)},
    )


def load_parquet(hyper: HyperProcess, hyper_path: Path, parquet_by_table: Mapping[str, Path]) -> dict[str, int]:
    """Create hyper_path with one table per Parquet file; return the row count Hyper holds per table."""
    names = hyper_table_names(list(parquet_by_table))
    counts: dict[str, int] = {}
    with Connection(hyper.endpoint, str(hyper_path), CreateMode.CREATE_AND_REPLACE) as connection:
        connection.execute_command(f"CREATE SCHEMA {escape_name(EXTRACT_SCHEMA)}")
        for table, parquet in parquet_by_table.items():
            target = f"{escape_name(EXTRACT_SCHEMA)}.{escape_name(names[table])}"
            source = f"external({escape_string_literal(str(parquet))}, FORMAT => 'parquet')"
            try:
                connection.execute_command(f"CREATE TABLE {target} AS (SELECT * FROM {source})")
            except HyperException as exc:
                # A full disk ("growing the database file failed") is told apart by the caller, which
                # maps every Hyper error of the build through disk_full_error. Otherwise:
                # deterministic for a given table (a type or value Hyper rejects): retrying cannot help.
                raise BadDataError(f"Hyper could not load table {table!r}: {exc.main_message}") from None
            counts[table] = int(connection.execute_scalar_query(f"SELECT COUNT(*) FROM {target}"))
    return counts


def build_hyper(hyper_path: Path, parquet_by_table: Mapping[str, Path], work_dir: Path) -> dict[str, int]:
    """Start Hyper, load the Parquet files into hyper_path, stop Hyper."""
    with start_hyper(work_dir) as hyper:
        return load_parquet(hyper, hyper_path, parquet_by_table)
